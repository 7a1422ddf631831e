"""Fixtures every test file builds on: stores on SQLite and PostgreSQL, configuration, apps, clients."""

from __future__ import annotations

import contextlib
import datetime
import pathlib
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from coderapi import apikey, logs, testing
from coderapi.app import create_app, shutdown
from coderapi.config import DeploymentValues, load
from coderapi.config.settings import WIRE_FORMATS, Settings
from coderapi.database import Store
from coderapi.database.tables import metadata
from coderapi.database.users import User
from coderapi.testing import TOKEN_LIFETIME, ServerProcess, Users, child_env, seed_users, venv_command
from tests import services


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis (schemathesis's engine) keeps its directory outside the checkout: a test run leaves
    nothing behind."""
    import tempfile

    from hypothesis import configuration

    configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="coderapi-hypothesis-"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that builds an app (through `settings`) runs in both wire forms, or in the forms its
    `@pytest.mark.wire_format(...)` marker names (a test of one form's bytes)."""
    if "wire_format" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("wire_format")
        metafunc.parametrize("wire_format", marker.args if marker else WIRE_FORMATS)


# The PostgreSQL instance of a test parametrised over databases: `-m "not postgres"` leaves it out.
POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


def _reaches_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return "pg_url" in getattr(item, "fixturenames", ()) or "postgres" in params


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the PostgreSQL fixtures (`pg_url`, a `postgres` parameter) is marked
    `postgres`; `services.require_postgres` fails any other test that reaches PostgreSQL."""
    unmarked = [i.nodeid for i in items if _reaches_postgres(i) and i.get_closest_marker("postgres") is None]
    if unmarked:
        raise pytest.UsageError("tests using PostgreSQL without the postgres marker: " + ", ".join(unmarked))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    services.entering(item)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test run's own, migrated once, dropped at the end."""
    services.require_postgres()
    with testing.pg_database("coderapi_test") as url:
        store = Store(url)
        store.migrate()
        store.close()
        yield url


def _truncate_all(store: Store) -> None:
    names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=["sqlite", POSTGRES])
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
def settings(tmp_path: pathlib.Path, wire_format: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", wire_format=wire_format)


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
        values = values if values is not None else make_values(argv, env)
        # What the entry points do before they build an app.
        logs.configure_from_values(values)
        app = create_app(
            values,
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
        return apikey.issue(store, user.id, lifetime or TOKEN_LIFETIME, token_name=name, expires_at=expires_at)

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


# ---------------------------------------------------------------------------------------------------
# Serving (tests/test_serving*.py, test_nginx.py, test_cluster.py): real servers as child processes.
# Every process started here is stopped at the end of the test, whatever happens.
# ---------------------------------------------------------------------------------------------------

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_server(tmp_path: pathlib.Path) -> Iterator[StartServer]:
    """`start_server(*flags, env={...}, workers=2, name="node", wait=True)` runs `coderapi server` with
    its own data directory and a free HTTP port, waits for /healthz, and stops it after the test.
    `workers=None` leaves CODERAPI_WORKERS unset: the server's default worker count."""
    started: list[ServerProcess] = []

    def start(
        *flags: str,
        env: Mapping[str, str] | None = None,
        workers: int | None = 2,
        name: str = "node",
        wait: bool = True,
    ) -> ServerProcess:
        data = tmp_path / name
        data.mkdir(exist_ok=True)
        count = {} if workers is None else {"CODERAPI_WORKERS": str(workers)}
        child = child_env({"CODERAPI_DATA_DIR": str(data), **count, **(env or {})})
        proc = ServerProcess(flags, child, tmp_path / f"{name}.out")
        started.append(proc)
        if wait:
            proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.stop()


# ---------------------------------------------------------------------------------------------------
# Hardening (tests/test_fuzz.py, test_bad_input.py, test_faults.py, test_security.py, test_browser.py):
# a live `coderapi server` with an owner and a member, plain HTTP without client-side normalisation,
# and the error-envelope check. Servers started here are stopped when their `with` block ends.
# ---------------------------------------------------------------------------------------------------

ENVELOPE_KEYS = frozenset({"message", "detail", "validations"})


class LiveServer:
    """A running server, the environment it (and the CLI against its database) runs with, and the
    tokens of an owner and a member made before it started serving."""

    def __init__(self, process: ServerProcess, env: Mapping[str, str], users: Users):
        self.process = process
        self.env = dict(env)
        self.users = dict(users)  # username -> (user id, token)

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def owner_token(self) -> str:
        return self.users["owner"][1]

    @property
    def member_token(self) -> str:
        return self.users["member"][1]

    def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, Any, bytes]:
        return http_request(self.port, method, path, headers, body)


def run_coderapi(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`coderapi <args>` as a child process with `env`, its output captured as text."""
    return subprocess.run(
        [venv_command("coderapi"), *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_one_line_failure(done: subprocess.CompletedProcess[str], *secrets: str) -> str:
    """The command exited non-zero with exactly one line on stderr, no traceback, and none of `secrets`
    in its output. Returns the line."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for secret in secrets:
        assert secret not in done.stderr + done.stdout, (secret, done.stderr)
    return lines[0]


def coderapi_cli(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> str:
    """`coderapi <args>` as a child process with `env`; its stdout, stripped. Fails the test when it
    exits non-zero."""
    done = run_coderapi(*args, env=env, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"coderapi {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def seed_users_with_cli(env: Mapping[str, str]) -> Users:
    """An owner and a member as `seed_users` makes them, through the real `coderapi users|tokens create`
    commands."""
    users: Users = {}
    for name, roles in (("owner", "owner"), ("member", "")):
        argv = ["users", "create", "--username", name, "--email", f"{name}@example.com"]
        user_id = coderapi_cli(*argv, *(["--roles", roles] if roles else []), env=env)
        users[name] = (user_id, coderapi_cli("tokens", "create", "--user", name, "--lifetime", "24h", env=env))
    return users


def live_server(
    directory: pathlib.Path,
    *flags: str,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
    seed: Callable[[Mapping[str, str]], Users] = seed_users,
) -> contextlib.AbstractContextManager[LiveServer]:
    """A context manager: seed users into the database, run `coderapi server *flags` on a free port
    with its data in `directory`, wait until it is ready, yield a LiveServer, stop it on exit. Usable
    from module-scoped fixtures (the `start_server` fixture is per test)."""

    @contextlib.contextmanager
    def run() -> Iterator[LiveServer]:
        directory.mkdir(parents=True, exist_ok=True)
        data = str(directory / "data")
        child = child_env({"CODERAPI_DATA_DIR": data, "CODERAPI_WORKERS": str(workers), **(env or {})})
        users = seed(child)
        with ServerProcess(flags, child, directory / "server.out") as proc:
            proc.wait_ready()
            yield LiveServer(proc, child, users)

    return run()


def http_request(
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any, bytes]:
    """One request on a fresh connection, the path sent exactly as given: (status, headers, body)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def raw_http(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data` as is on a fresh connection and return everything the server answers until it closes."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def header_value(headers: Any, name: str) -> str | None:
    """One header's value from any client's header mapping (http.client, requests, schemathesis)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None


def assert_envelope(status: int, headers: Any, body: bytes, message: str | None = None) -> dict[str, Any]:
    """The response is an error in coderd's envelope: JSON content type, `{message, detail?,
    validations?}` with the right types, one trailing newline, no traceback. Returns the body."""
    import json

    assert 400 <= status < 600, (status, body[:300])
    content_type = header_value(headers, "Content-Type")
    assert content_type == "application/json; charset=utf-8", (status, content_type)
    assert body.endswith(b"\n") and not body.endswith(b"\n\n"), body[-50:]
    assert b"Traceback" not in body and b'File "' not in body, body[:300]
    doc = json.loads(body)
    assert isinstance(doc, dict) and set(doc) <= ENVELOPE_KEYS, doc
    assert isinstance(doc["message"], str) and doc["message"], doc
    assert isinstance(doc.get("detail", ""), str), doc
    for v in doc.get("validations", []):
        assert set(v) == {"field", "detail"} and all(isinstance(x, str) for x in v.values()), doc
    if message is not None:
        assert doc["message"] == message, doc
    return doc
