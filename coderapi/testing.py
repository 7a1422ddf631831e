"""What the tests and the scripts share to run coderapi for real: a free port, the health wait, child
processes and `coderapi server`, seeded users, and PostgreSQL databases of their own.

As `flask.testing` is to Flask: the service never imports it, nor does `import coderapi`. One variable,
CODERAPI_TEST_PG_URL, names the PostgreSQL admin URL databases are created and dropped through.
`python -m coderapi.testing` gives shell scripts the same helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from coderapi.database import Store

PG_ADMIN_URL_VAR = "CODERAPI_TEST_PG_URL"
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# A release feed that is down: a closed local port, so nothing reaches the internet.
CLOSED_FEED_URL = "http://127.0.0.1:9/releases/latest"
SERVER_START_TIMEOUT = 40.0
TOKEN_LIFETIME = datetime.timedelta(days=7)
# An owner and a member: (username, roles).
OWNER_AND_MEMBER: tuple[tuple[str, Sequence[str]], ...] = (("owner", ("owner",)), ("member", ()))
# Variables of the developer's shell that would change a child server's configuration.
_CHILD_ENV_DROP = ("CODER_", "CODERAPI_", "PROMETHEUS_", "HOMEBREW_CODER_")

Users = dict[str, tuple[str, str]]
"""username -> (user id, token)."""


class NotReady(RuntimeError):
    """A server did not answer in time, or exited before it did."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str) -> str:
    """A name no other run uses (databases, Redis key prefixes)."""
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def venv_command(name: str) -> str:
    """The path of command `name` installed beside this Python (`coderapi`, `gunicorn`)."""
    return str(pathlib.Path(sys.executable).parent / name)


def child_env(extra: Mapping[str, str] | None = None, *, update_check: bool = False) -> dict[str, str]:
    """This process's environment without the variables that configure coderapi, then `extra`. The
    update check is off, or with `update_check` on against a feed that is down."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_CHILD_ENV_DROP)}
    if update_check:
        env["CODERAPI_UPDATE_CHECK_URL"] = CLOSED_FEED_URL
    else:
        env["CODER_UPDATE_CHECK"] = "false"
    env.update(extra or {})
    return env


def wait_http(url: str, timeout: float = SERVER_START_TIMEOUT, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll `url` until it answers 200. Raises NotReady after `timeout` or once `alive()` is false."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not alive():
            raise NotReady(f"process serving {url} exited before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (a local URL)
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.1)
    raise NotReady(f"{url} not ready after {timeout}s: {last}")


class ChildProcess:
    """A child process in its own process group, its output in a file; a context manager that stops it."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], log: pathlib.Path, cwd: pathlib.Path | None = None
    ) -> None:
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
        if self.alive():
            os.kill(self.proc.pid, sig)

    def children(self) -> list[int]:
        """The process ids of its children (a gunicorn master's workers), in order."""
        path = pathlib.Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return sorted(int(p) for p in path.read_text().split())
        except OSError:
            return []

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL to the whole group if it has not exited within `timeout`; the exit code."""
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerProcess(ChildProcess):
    """`coderapi server *flags` on a free port of 127.0.0.1."""

    def __init__(self, flags: Sequence[str], env: Mapping[str, str], log: pathlib.Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [venv_command("coderapi"), "server", "--http-address", f"127.0.0.1:{self.port}", *flags]
        super().__init__(argv, env, log)

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        """Wait until /healthz answers; NotReady when it does not in time or the server exits."""
        wait_http(self.url + "/healthz", timeout, self.alive)


def add_users(
    store: Store,
    users: Sequence[tuple[str, Sequence[str]]] = OWNER_AND_MEMBER,
    lifetime: datetime.timedelta = TOKEN_LIFETIME,
) -> Users:
    """`users` (username, roles) with a token each in `store`."""
    from coderapi import apikey

    seeded: Users = {}
    for name, roles in users:
        user = store.insert_user(name, f"{name}@example.com", roles)
        seeded[name] = (str(user.id), apikey.issue(store, user.id, lifetime))
    return seeded


def seed_users(
    env: Mapping[str, str],
    users: Sequence[tuple[str, Sequence[str]]] = OWNER_AND_MEMBER,
    lifetime: datetime.timedelta = TOKEN_LIFETIME,
) -> Users:
    """`users` (username, roles) with a token each, written straight into the database `env` configures
    (the Store a server with `env` opens), migrated first."""
    # Imported here: the process and port helpers serve scripts that never build the app.
    from coderapi.config import load
    from coderapi.config.settings import Settings
    from coderapi.database.open import open_store

    store = open_store(load((), dict(env)), Settings.from_environ(env))
    try:
        store.migrate()
        return add_users(store, users, lifetime)
    finally:
        store.close()


def pg_admin_url() -> str:
    """The PostgreSQL URL databases are created and dropped through (CODERAPI_TEST_PG_URL)."""
    return os.environ.get(PG_ADMIN_URL_VAR) or DEFAULT_PG_ADMIN_URL


def pg_address() -> tuple[str, int]:
    """The host and port of the admin URL's server."""
    parts = urllib.parse.urlsplit(pg_admin_url())
    return parts.hostname or "127.0.0.1", parts.port or 5432


def create_pg_database(name: str, *, exist_ok: bool = False) -> str:
    """Create database `name` (unless `exist_ok` and it exists) and return its URL."""
    import psycopg

    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if not (exist_ok and exists):
            conn.execute(f'CREATE DATABASE "{name}"')
    return pg_admin_url().rpartition("/")[0] + "/" + name


def drop_pg_database(name: str) -> None:
    """Drop database `name` if it exists, closing its connections."""
    import psycopg

    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def pg_database(prefix: str) -> Iterator[str]:
    """A fresh database named after `prefix` for the block: its URL; dropped afterwards."""
    name = unique_name(prefix)
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


def main(argv: Sequence[str] | None = None) -> None:
    """`database NAME`: create it when missing and print its URL; `wait URL [SECONDS]`: the health wait."""
    ap = argparse.ArgumentParser(prog="python -m coderapi.testing", description=main.__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("database").add_argument("name")
    wait = sub.add_parser("wait")
    wait.add_argument("url")
    wait.add_argument("seconds", type=float, nargs="?", default=SERVER_START_TIMEOUT)
    args = ap.parse_args(argv)
    if args.command == "database":
        print(create_pg_database(args.name, exist_ok=True))
        return
    try:
        wait_http(args.url, args.seconds)
    except NotReady as err:
        raise SystemExit(str(err)) from None


if __name__ == "__main__":
    main()
