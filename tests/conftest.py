"""Fixtures every test file builds on: stores on SQLite and PostgreSQL, configuration, apps, clients."""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from coderapi import apikey
from coderapi.app import create_app, shutdown
from coderapi.config import DeploymentValues, load
from coderapi.config.settings import Settings
from coderapi.database import Store
from coderapi.database.tables import metadata
from coderapi.database.users import User
from tests import services

# Nothing in the tests may reach the internet: the release feed points at a closed local port unless a
# test serves its own fake feed.
CLOSED_FEED_URL = "http://127.0.0.1:9/releases/latest"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test run's own, migrated once, dropped at the end."""
    services.require_postgres()
    name = services.unique_name("coderapi_test")
    url = services.create_pg_database(name)
    store = Store(url)
    store.migrate()
    store.close()
    yield url
    services.drop_pg_database(name)


def _truncate_all(store: Store) -> None:
    names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Store]:
    """A migrated, empty Store, once on an embedded SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        s = Store("sqlite:///" + str(tmp_path / "coderapi.db"))
        s.migrate()
    else:
        s = Store(request.getfixturevalue("pg_url"))
        _truncate_all(s)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: pathlib.Path) -> Iterator[Store]:
    """A migrated SQLite Store, for tests whose subject is not the database."""
    s = Store("sqlite:///" + str(tmp_path / "coderapi.db"))
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path: pathlib.Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", update_check_url=CLOSED_FEED_URL)


MakeValues = Callable[..., DeploymentValues]


@pytest.fixture
def make_values() -> MakeValues:
    def make(argv: Sequence[str] = (), env: Mapping[str, str] | None = None) -> DeploymentValues:
        return load(tuple(argv), dict(env or {}))

    return make


MakeApp = Callable[..., Flask]


@pytest.fixture
def make_app(store: Store, settings: Settings, make_values: MakeValues) -> Iterator[MakeApp]:
    """Build apps on the test's store; their background services are stopped afterwards."""
    apps: list[Flask] = []

    def make(
        values: DeploymentValues | None = None,
        *,
        argv: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Flask:
        app = create_app(
            values if values is not None else make_values(argv, env),
            kwargs.pop("store", store),
            kwargs.pop("settings", settings),
        )
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        shutdown(app)


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    return make_app()


# ---------------------------------------------------------------------------------------------------
# Auth fixtures: users, tokens and the session header (owned by the users/tokens engineer).
# ---------------------------------------------------------------------------------------------------

MakeUser = Callable[..., User]
MakeToken = Callable[..., str]
TEST_TOKEN_LIFETIME = datetime.timedelta(days=7)


@pytest.fixture
def make_user(store: Store) -> MakeUser:
    """`make_user(username, roles=(), *, email=None, status="active")` -> the stored User."""

    def make(username: str, roles: Sequence[str] = (), *, email: str | None = None, status: str = "active") -> User:
        return store.insert_user(username, email or f"{username}@example.com", roles, status=status)

    return make


@pytest.fixture
def make_token(store: Store) -> MakeToken:
    """`make_token(user, lifetime=None, *, name="", expires_at=None)` -> a token string for the user
    (lifetime a timedelta, 7 days by default)."""

    def make(
        user: User,
        lifetime: datetime.timedelta | None = None,
        *,
        name: str = "",
        expires_at: datetime.datetime | None = None,
    ) -> str:
        return apikey.issue(store, user.id, lifetime or TEST_TOKEN_LIFETIME, token_name=name, expires_at=expires_at)

    return make


@pytest.fixture
def owner(make_user: MakeUser) -> User:
    return make_user("owner", ["owner"])


@pytest.fixture
def member(make_user: MakeUser) -> User:
    return make_user("member")


@pytest.fixture
def auditor(make_user: MakeUser) -> User:
    return make_user("auditor", ["auditor"])


@pytest.fixture
def owner_token(owner: User, make_token: MakeToken) -> str:
    return make_token(owner)


@pytest.fixture
def member_token(member: User, make_token: MakeToken) -> str:
    return make_token(member)


@pytest.fixture
def auditor_token(auditor: User, make_token: MakeToken) -> str:
    return make_token(auditor)


def auth_headers(token: str) -> dict[str, str]:
    """The header a client sends its session token in."""
    return {"Coder-Session-Token": token}


@pytest.fixture
def auth() -> Callable[[str], dict[str, str]]:
    """`auth(token)` -> `{"Coder-Session-Token": token}`."""
    return auth_headers
