"""Queries on `users`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine, bindparam, delete, func, select, update

from coderapi.database.rows import TableRow
from coderapi.database.tables import api_keys, users

if TYPE_CHECKING:
    from coderapi.database.keycache import KeyCache

STATUS_ACTIVE = "active"
STATUS_SUSPENDED = "suspended"
STATUS_DORMANT = "dormant"
STATUSES = (STATUS_ACTIVE, STATUS_SUSPENDED, STATUS_DORMANT)


class DuplicateUserError(ValueError):
    """The username or email is taken by a user that is not deleted."""


@dataclass(frozen=True)
class User:
    """A row of `users` (coderd's database.User); a deleted user keeps the row, marked `deleted`."""

    id: uuid.UUID
    email: str
    username: str
    status: str
    rbac_roles: tuple[str, ...]
    login_type: str
    created_at: dt.datetime
    updated_at: dt.datetime
    last_seen_at: dt.datetime | None
    deleted: bool


USER_ROW = TableRow(User, users)


def now() -> dt.datetime:
    """coderd's dbtime.Now(): UTC, microsecond precision."""
    return dt.datetime.now(dt.UTC)


# Built once with bound parameters (no statement construction per call).
_BY_ID = select(users).where(users.c.id == bindparam("user_id"), users.c.deleted.is_(False))
_BY_USERNAME = select(users).where(func.lower(users.c.username) == bindparam("username"), users.c.deleted.is_(False))


class UserQueries:
    engine: Engine
    key_cache: KeyCache | None

    def _forget_user(self, user_id: uuid.UUID) -> None:
        """This process's own write is seen by its next lookup at once, before the notification."""
        if self.key_cache is not None:
            self.key_cache.forget_user(user_id)

    def insert_user(
        self,
        username: str,
        email: str,
        roles: Sequence[str] = (),
        *,
        login_type: str = "password",
        status: str = STATUS_ACTIVE,
        created_at: dt.datetime | None = None,
    ) -> User:
        """Create a user. Raises DuplicateUserError when the username or email is taken."""
        at = created_at or now()
        user = User(
            id=uuid.uuid4(),
            email=email,
            username=username,
            status=status,
            rbac_roles=tuple(roles),
            login_type=login_type,
            created_at=at,
            updated_at=at,
            last_seen_at=None,
            deleted=False,
        )
        duplicate = DuplicateUserError(f"a user with username {username!r} or email {email!r} already exists")
        return USER_ROW.insert(self.engine, user, duplicate)

    def get_user_by_id(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, unless deleted."""
        with self.engine.connect() as conn:
            row = conn.execute(_BY_ID, {"user_id": user_id}).first()
        return USER_ROW.decode(row) if row is not None else None

    def get_user_by_username(self, username: str) -> User | None:
        """The user with this username compared case-insensitively, unless deleted."""
        with self.engine.connect() as conn:
            row = conn.execute(_BY_USERNAME, {"username": username.lower()}).first()
        return USER_ROW.decode(row) if row is not None else None

    def list_users(self) -> list[User]:
        """Every user that is not deleted, oldest first."""
        stmt = select(users).where(users.c.deleted.is_(False)).order_by(users.c.created_at, users.c.username)
        with self.engine.connect() as conn:
            return [USER_ROW.decode(row) for row in conn.execute(stmt)]

    def update_user_status(self, user_id: uuid.UUID, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown user status {status!r}")
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(status=status, updated_at=now()))
        self._forget_user(user_id)

    def delete_user(self, user_id: uuid.UUID) -> None:
        """Mark the user deleted (coderd keeps the row) and delete every API key they hold, in one
        transaction, so their tokens stop working at once."""
        with self.engine.begin() as conn:
            conn.execute(delete(api_keys).where(api_keys.c.user_id == user_id))
            conn.execute(update(users).where(users.c.id == user_id).values(deleted=True, updated_at=now()))
        self._forget_user(user_id)
