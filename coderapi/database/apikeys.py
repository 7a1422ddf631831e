"""Queries on `api_keys`. The hot path is `get_api_key_with_user`: one query by primary key, joined
with the key's user, for every authenticated request (on SQLite an answer is reused only while
nothing has been committed since, see pinned.py; on PostgreSQL only while the token cache's listener
has heard of no change to the key or its user, see keycache.py)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from coderapi.database.keycache import KeyCache
from coderapi.database.pinned import Disconnected, PinnedConnections
from coderapi.database.rows import TableRow
from coderapi.database.tables import api_keys, users
from coderapi.database.users import USER_ROW, User, now

LOGIN_TYPE_TOKEN = "token"  # noqa: S105 (a login type, not a secret)
SCOPE_ALL = "coder:all"


class DuplicateTokenNameError(ValueError):
    """The user already has a token with that name."""


@dataclass(frozen=True)
class APIKey:
    """A row of `api_keys` (coderd's database.APIKey): the token's id, the SHA-256 of its secret, its
    user, and its lifetime and last use."""

    id: str
    hashed_secret: bytes
    user_id: uuid.UUID
    last_used: dt.datetime
    expires_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    login_type: str
    lifetime_seconds: int
    ip_address: str
    token_name: str
    scopes: tuple[str, ...]


KEY_ROW = TableRow(APIKey, api_keys)

# The hot query, every column of the key and then of its user: compiled once per driver and run on a
# pinned connection (pinned.py), which skips SQLAlchemy's per-execution work (about a third of an
# authenticated request's cost on SQLite).
_KEY_WITH_USER = (
    select(*KEY_ROW.columns, *USER_ROW.columns)
    .join_from(api_keys, users, api_keys.c.user_id == users.c.id)
    .where(api_keys.c.id == bindparam("key_id"))
)

# The pinned connections' drivers, with their positional placeholders: `?` for sqlite3, `$1` for
# libpq's prepared statements.
_DRIVER_DIALECTS: dict[str, Callable[[], Dialect]] = {
    "sqlite": SQLiteDialect_pysqlite,
    "postgresql": lambda: PGDialect_psycopg(paramstyle="numeric_dollar"),  # type: ignore[no-untyped-call]
}


class _Lookup(NamedTuple):
    sql: str
    decode: Callable[[tuple[Any, ...]], tuple[APIKey, User]]


@functools.cache
def _lookup(dialect_name: str) -> _Lookup:
    """The hot query's SQL text for this database's driver and its row decoder (the driver's values:
    sqlite3's, or libpq's text forms).

    The decoder is memoised on the row's values: the same stored values always decode to the same
    (immutable) objects, and parsing six timestamps, two UUIDs and two JSON documents is most of the
    lookup's cost. (Whether the row must be read again is decided by pinned.py on SQLite and
    keycache.py on PostgreSQL.)"""
    key, user = KEY_ROW.decoder(dialect_name), USER_ROW.decoder(dialect_name)
    split = len(KEY_ROW.columns)

    @functools.lru_cache(maxsize=1024)
    def decode(row: tuple[Any, ...]) -> tuple[APIKey, User]:
        return key(row[:split]), user(row[split:])

    return _Lookup(str(_KEY_WITH_USER.compile(dialect=_DRIVER_DIALECTS[dialect_name]())), decode)


class APIKeyQueries:
    engine: Engine
    pinned: PinnedConnections
    key_cache: KeyCache | None

    def insert_api_key(
        self,
        key_id: str,
        hashed_secret: bytes,
        user_id: uuid.UUID,
        *,
        lifetime_seconds: int,
        expires_at: dt.datetime,
        login_type: str = LOGIN_TYPE_TOKEN,
        token_name: str = "",
        scopes: Sequence[str] = (SCOPE_ALL,),
        ip_address: str = "0.0.0.0",
        created_at: dt.datetime | None = None,
    ) -> APIKey:
        """Store a key. Raises DuplicateTokenNameError when the user has a token of that name."""
        at = created_at or now()
        key = APIKey(
            id=key_id,
            hashed_secret=hashed_secret,
            user_id=user_id,
            last_used=at,
            expires_at=expires_at,
            created_at=at,
            updated_at=at,
            login_type=login_type,
            lifetime_seconds=lifetime_seconds,
            ip_address=ip_address,
            token_name=token_name,
            scopes=tuple(scopes),
        )
        duplicate = DuplicateTokenNameError(f"a token named {token_name!r} already exists for this user")
        return KEY_ROW.insert(self.engine, key, duplicate)

    def get_api_key_with_user(self, key_id: str) -> tuple[APIKey, User] | None:
        """The key with this id and its user (deleted or not). On PostgreSQL an answer kept by the
        token cache while its listener proves nothing changed (keycache.py), else one query, one
        round trip, on this thread's pinned connection (autocommit on PostgreSQL, so no BEGIN before
        it, no ROLLBACK after); on SQLite the pinned connection's answer kept under `data_version`.

        A connection the server has dropped (a database restart) is replaced, the pool discarded for
        the same reason, and the query tried once more. Raises SQLAlchemyError (DBAPIError) when the
        database fails."""
        cache = self.key_cache
        if cache is None:
            return self._read_api_key_with_user(key_id)
        kept: tuple[APIKey, User] | None = cache.get(key_id)
        if kept is not None:
            return kept
        # Taken before the read: the answer is kept only if nothing was heard while reading.
        ticket = cache.ticket()
        found = self._read_api_key_with_user(key_id)
        if found is not None:
            cache.put(key_id, found[1].id, found, ticket)
        return found

    def _read_api_key_with_user(self, key_id: str) -> tuple[APIKey, User] | None:
        dialect = self.engine.dialect
        sql, decode = _lookup(dialect.name)
        try:
            return self.pinned.read(sql, (key_id,), decode)
        except Disconnected:
            self.engine.dispose()
            try:
                return self.pinned.read(sql, (key_id,), decode)
            except Disconnected as gone:
                orig: Exception = gone.err
                raise DBAPIError.instance(sql, [key_id], orig, dialect.loaded_dbapi.Error) from gone.err

    def _forget_key(self, key_id: str) -> None:
        """This process's own write is seen by its next lookup at once, before the notification."""
        if self.key_cache is not None:
            self.key_cache.forget_key(key_id)

    def get_api_key_by_id(self, key_id: str) -> APIKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return KEY_ROW.decode(row) if row is not None else None

    def list_api_keys_by_user(self, user_id: uuid.UUID, login_type: str | None = LOGIN_TYPE_TOKEN) -> list[APIKey]:
        stmt = select(api_keys).where(api_keys.c.user_id == user_id)
        if login_type is not None:
            stmt = stmt.where(api_keys.c.login_type == login_type)
        with self.engine.connect() as conn:
            return [KEY_ROW.decode(r) for r in conn.execute(stmt.order_by(api_keys.c.created_at, api_keys.c.id))]

    def update_api_key_usage(
        self, key_id: str, *, last_used: dt.datetime, expires_at: dt.datetime, ip_address: str
    ) -> None:
        """coderd's UpdateAPIKeyByID, followed by UpdateUserLastSeenAt, in one transaction."""
        with self.engine.begin() as conn:
            user_id = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id)
                .values(last_used=last_used, expires_at=expires_at, ip_address=ip_address, updated_at=last_used)
                .returning(api_keys.c.user_id)
            ).scalar_one_or_none()
            if user_id is not None:
                conn.execute(
                    update(users).where(users.c.id == user_id).values(last_seen_at=last_used, updated_at=last_used)
                )
        self._forget_key(key_id)

    def delete_api_key(self, key_id: str) -> bool:
        """Delete a key; False when there was none."""
        with self.engine.begin() as conn:
            deleted = conn.execute(delete(api_keys).where(api_keys.c.id == key_id)).rowcount == 1
        self._forget_key(key_id)
        return deleted
