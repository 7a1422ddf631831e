"""Fixtures every test file builds on: stores on SQLite and PostgreSQL, configuration, apps, clients."""

from __future__ import annotations

import datetime
import pathlib
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from coderapi import apikey, logs
from coderapi.app import create_app, shutdown
from coderapi.config import DeploymentValues, load
from coderapi.config.settings import WIRE_FORMATS, Settings
from coderapi.database import Store
from coderapi.database.tables import metadata
from coderapi.database.users import User
from tests import services

# Nothing in the tests may reach the internet: no release feed is known (CODERAPI_SOURCE_URL unset)
# unless a test serves its own fake feed; a feed that is down is a closed local port.
CLOSED_FEED_URL = "http://127.0.0.1:9/releases/latest"


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


# ---------------------------------------------------------------------------------------------------
# Serving (tests/test_serving*.py, test_nginx.py, test_cluster.py): real servers as child processes.
# Every process started here is stopped at the end of the test, whatever happens.
# ---------------------------------------------------------------------------------------------------

# Variables of the developer's shell that would change a child server's configuration.
_CHILD_ENV_DROP = ("CODER_", "CODERAPI_", "PROMETHEUS_MULTIPROC_DIR", "HOMEBREW_CODER_")
SERVER_START_TIMEOUT = 40.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_CHILD_ENV_DROP)}
    # The update check is off unless a test turns it on (with a feed of its own).
    env["CODER_UPDATE_CHECK"] = "false"
    env.update(extra or {})
    return env


def wait_http(url: str, timeout: float = SERVER_START_TIMEOUT, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll `url` until it answers 200; fails the test after `timeout` or when `alive()` turns false."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not alive():
            pytest.fail(f"process serving {url} exited before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.1)
    pytest.fail(f"{url} not ready after {timeout}s: {last}")


class ChildProcess:
    """A child process in its own process group, with its output in a file."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: pathlib.Path, cwd: pathlib.Path | None = None):
        import subprocess

        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            list(argv), env=dict(env), stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        import os

        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL to the whole group if it has not exited within `timeout`."""
        import contextlib
        import os
        import signal
        import subprocess

        try:
            if self.alive():
                os.kill(self.proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout)
            # Whatever is left of the group (workers of a master that died) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)
        finally:
            self._out.close()


class ServerProcess(ChildProcess):
    """`coderapi server` on 127.0.0.1:`port`."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: pathlib.Path, port: int):
        super().__init__(argv, env, log)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_server(tmp_path: pathlib.Path) -> Iterator[StartServer]:
    """`start_server(*flags, env={...}, workers=2, name="node", wait=True)` runs `coderapi server` with
    its own data directory and a free HTTP port, waits for /healthz, and stops it after the test.
    `workers=None` leaves CODERAPI_WORKERS unset: the server's default worker count."""
    import sys

    started: list[ChildProcess] = []
    coderapi = str(pathlib.Path(sys.executable).parent / "coderapi")

    def start(
        *flags: str,
        env: Mapping[str, str] | None = None,
        workers: int | None = 2,
        name: str = "node",
        wait: bool = True,
    ) -> ServerProcess:
        port = free_port()
        data = tmp_path / name
        data.mkdir(exist_ok=True)
        count = {} if workers is None else {"CODERAPI_WORKERS": str(workers)}
        child = child_env({"CODERAPI_DATA_DIR": str(data), **count, **(env or {})})
        argv = [coderapi, "server", "--http-address", f"127.0.0.1:{port}", *flags]
        proc = ServerProcess(argv, child, tmp_path / f"{name}.out", port)
        started.append(proc)
        if wait:
            wait_http(proc.url + "/healthz", alive=proc.alive)
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

    def __init__(self, process: ServerProcess, env: Mapping[str, str], users: Mapping[str, tuple[str, str]]):
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
    import sys

    exe = str(pathlib.Path(sys.executable).parent / "coderapi")
    return subprocess.run([exe, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)


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


def seed_users_in_store(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """An owner and a member with a token each, written straight into the database `env` configures
    (the same Store the server opens): `{username: (user id, token)}`."""
    from coderapi.database.open import open_store

    store = open_store(load((), dict(env)), Settings.from_environ(env))
    try:
        store.migrate()
        users: dict[str, tuple[str, str]] = {}
        for name, roles in (("owner", ["owner"]), ("member", [])):
            user = store.insert_user(name, f"{name}@example.com", roles)
            users[name] = (str(user.id), apikey.issue(store, user.id, TEST_TOKEN_LIFETIME))
        return users
    finally:
        store.close()


def seed_users_with_cli(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """The same as `seed_users_in_store`, through the real `coderapi users|tokens create` commands."""
    users: dict[str, tuple[str, str]] = {}
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
    seed: Callable[[Mapping[str, str]], dict[str, tuple[str, str]]] = seed_users_in_store,
) -> Any:
    """A context manager: seed users into the database, run `coderapi server *flags` on a free port
    with its data in `directory`, wait until it is ready, yield a LiveServer, stop it on exit. Usable
    from module-scoped fixtures (the `start_server` fixture is per test)."""
    import contextlib
    import sys

    @contextlib.contextmanager
    def run() -> Iterator[LiveServer]:
        directory.mkdir(parents=True, exist_ok=True)
        data = str(directory / "data")
        child = child_env({"CODERAPI_DATA_DIR": data, "CODERAPI_WORKERS": str(workers), **(env or {})})
        users = seed(child)
        port = free_port()
        exe = str(pathlib.Path(sys.executable).parent / "coderapi")
        argv = [exe, "server", "--http-address", f"127.0.0.1:{port}", *flags]
        proc = ServerProcess(argv, child, directory / "server.out", port)
        try:
            wait_http(proc.url + "/healthz", alive=proc.alive)
            yield LiveServer(proc, child, users)
        finally:
            proc.stop()

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
    return doc  # type: ignore[no-any-return]
