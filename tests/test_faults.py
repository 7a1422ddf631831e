"""Faults while serving: PostgreSQL stopped and started again, Redis killed, a worker killed with SIGKILL
under load. Each runs a real `coderapi server` against a PRIVATE PostgreSQL or Redis started for the
test (the machine's shared servers are never touched), and stops everything it started.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import glob
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from coderapi import apikey, serving
from coderapi.httpmw.apikey import FETCH_KEY_ERROR_DETAIL, INTERNAL_ERROR_MESSAGE
from coderapi.testing import free_port
from tests.conftest import LiveServer, assert_envelope, coderapi_cli, http_request, live_server, seed_users_with_cli

pytestmark = pytest.mark.slow

TOKEN_HEADER = "Coder-Session-Token"
PUBLIC = ("/api/v2/", "/api/v2/buildinfo", "/api/v2/updatecheck", "/healthz")
# How long an authenticated request may take while the database is down.
OUTAGE_ANSWER_SECONDS = 5.0


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL's {name} is not installed, and CI is set")
        pytest.skip(f"PostgreSQL's {name} is not installed")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own in a temporary directory, on a free port, trust auth.
    As root, the cluster is owned and run by the `postgres` user (initdb refuses root)."""

    def __init__(self) -> None:
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are private to root, and postgres must reach it.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="coderapi-faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir.chmod(0o755)
        self.run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *argv: str) -> None:
        done = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.fail(f"{argv[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self.run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        # Immediate: like a crash, open connections are cut without a goodbye.
        self.run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                [*self.as_user, pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.close()


class PrivateRedis:
    def __init__(self, directory: pathlib.Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed, and CI is set")
            pytest.skip("redis-server is not installed")
        self.exe = exe
        self.port = free_port()
        self.dir = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while self.ping() is False:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail("private redis-server did not start")
            time.sleep(0.05)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def keys(self, pattern: str) -> list[bytes]:
        import redis

        return list(redis.Redis.from_url(self.url, socket_timeout=1).keys(pattern))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: pathlib.Path) -> Iterator[PrivateRedis]:
    r = PrivateRedis(tmp_path)
    try:
        r.start()
        yield r
    finally:
        r.kill()


def get(server: LiveServer, path: str, token: str | None = None) -> tuple[int, object, bytes, float]:
    start = time.monotonic()
    status, headers, body = server.request("GET", path, {TOKEN_HEADER: token} if token else {})
    return status, headers, body, time.monotonic() - start


def wait_until(check: object, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


# --- PostgreSQL stopped while serving --------------------------------------------------------------


def test_postgres_outage_and_recovery(private_pg: PrivatePostgres, tmp_path: pathlib.Path) -> None:
    with live_server(tmp_path / "pg", env={"CODER_PG_CONNECTION_URL": private_pg.url}, workers=2) as server:
        owner = server.owner_token
        for _ in range(6):
            assert get(server, "/api/v2/deployment/config", owner)[0] == 200
            assert get(server, "/api/v2/updatecheck")[0] == 200

        private_pg.stop()
        for _ in range(6):
            status, headers, body, took = get(server, "/api/v2/users/me/keys/tokens/tokenconfig", owner)
            assert took < OUTAGE_ANSWER_SECONDS, f"answer took {took:.1f}s"
            doc = assert_envelope(status, headers, body)
            # coderd writes every failure of the key lookup as 401 with its internal-error message
            # (coderd-behaviour.md §3.3 row 3b): a server-side failure, not "signed out".
            assert (status, doc["message"]) == (401, INTERNAL_ERROR_MESSAGE), doc
            assert doc["detail"].startswith(FETCH_KEY_ERROR_DETAIL.format(err="")), doc
            assert "SELECT" not in doc["detail"] and "postgres@" not in doc["detail"]
            for path in PUBLIC:
                status, _h, body, took = get(server, path)
                assert status == 200, (path, status, body[:200])
                assert took < OUTAGE_ANSWER_SECONDS
        assert server.process.alive()

        private_pg.start()
        took = wait_until(
            lambda: get(server, "/api/v2/deployment/ssh", owner)[0] == 200, 30, "authenticated requests after restart"
        )
        # Every worker recovers (their pools drop the dead connections), without a server restart.
        for _ in range(10):
            assert get(server, "/api/v2/users/me/keys/tokens/tokenconfig", owner)[0] == 200
            assert get(server, "/api/v2/deployment/ssh", server.member_token)[0] == 200
        assert took < 30
        # A token deleted after the restart is refused by every worker right away, whether its token
        # cache's listener has reconnected yet or not (until then it reads the database).
        with psycopg.connect(private_pg.url, autocommit=True) as psql:
            psql.execute("DELETE FROM api_keys WHERE id = %s", (apikey.split(server.member_token)[0],))
        time.sleep(0.2)
        for _ in range(10):
            assert get(server, "/api/v2/deployment/ssh", server.member_token)[0] == 401


def test_postgres_down_before_a_request_ever_reached_it(private_pg: PrivatePostgres, tmp_path: pathlib.Path) -> None:
    """A worker whose pool never opened a connection fails the same way, quickly."""
    with live_server(tmp_path / "pg", env={"CODER_PG_CONNECTION_URL": private_pg.url}, workers=1) as server:
        private_pg.stop()
        status, headers, body, took = get(server, "/api/v2/deployment/ssh", server.member_token)
        assert took < OUTAGE_ANSWER_SECONDS
        assert assert_envelope(status, headers, body)["message"] == INTERNAL_ERROR_MESSAGE
        assert get(server, "/api/v2/buildinfo")[0] == 200
        private_pg.start()
        wait_until(lambda: get(server, "/api/v2/deployment/ssh", server.member_token)[0] == 200, 30, "recovery")


def test_worker_restarted_during_a_postgres_outage(private_pg: PrivatePostgres, tmp_path: pathlib.Path) -> None:
    """A worker that boots while the database is down waits for it (and, after a while, exits to be
    replaced) instead of failing to boot, which gunicorn would answer by stopping the whole server."""
    with live_server(tmp_path / "pg", env={"CODER_PG_CONNECTION_URL": private_pg.url}, workers=2) as server:
        master = server.process.proc.pid
        # Both workers have loaded the app (a worker still booting would wait for the database too).
        wait_until(lambda: server.process.output().count("Worker ready") >= 2, 30, "two ready workers")
        private_pg.stop()
        victim = sorted(workers_of(master))[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in workers_of(master) and len(workers_of(master)) == 2, 30, "a new worker")
        # Longer than a booting worker waits for the database: it is replaced, the server stays up.
        deadline = time.monotonic() + serving.BOOT_DATABASE_WAIT + 3
        while time.monotonic() < deadline:
            assert server.process.alive()
            assert get(server, "/api/v2/buildinfo")[0] == 200
            time.sleep(0.5)
        private_pg.start()
        wait_until(lambda: get(server, "/api/v2/deployment/ssh", server.member_token)[0] == 200, 30, "recovery")
        for _ in range(10):
            assert get(server, "/api/v2/deployment/ssh", server.owner_token)[0] == 200
        assert "database unavailable" in server.process.output()


# --- Redis down --------------------------------------------------------------------------------------

LIMIT = 10


def assert_limited(statuses: list[int]) -> None:
    """LIMIT answers pass, then the limiter refuses. (A minute boundary crossed halfway can let the
    sliding-window estimate pass one more.)"""
    assert statuses[:LIMIT] == [200] * LIMIT, statuses
    assert set(statuses[LIMIT:]) <= {200, 429} and statuses[-2:] == [429, 429], statuses


def test_redis_down_falls_back_to_the_node_store(private_redis: PrivateRedis, tmp_path: pathlib.Path) -> None:
    env = {"CODERAPI_RATE_LIMIT_REDIS_URL": private_redis.url}
    # Two workers: the fallback is the node's store, one budget for both, so the counts stay exact.
    with live_server(tmp_path / "redis", "--api-rate-limit", str(LIMIT), env=env, workers=2) as server:
        token = server.member_token
        statuses = [get(server, "/api/v2/deployment/ssh", token)[0] for _ in range(LIMIT + 3)]
        assert_limited(statuses)
        assert private_redis.keys("coderapi:*ratelimit*"), "counters were not kept in redis"

        private_redis.kill()
        # A fresh path: its count starts at zero in the node's store.
        answers = [get(server, "/api/v2/experiments", token) for _ in range(LIMIT + 3)]
        assert_limited([a[0] for a in answers])
        for status, headers, body, took in answers:
            assert took < 2.0, f"a request took {took:.1f}s with redis down"
            if status == 429:
                assert assert_envelope(status, headers, body)["message"].startswith("You've been rate limited")
        # Public endpoints, other users and the anonymous limiter keep working.
        assert get(server, "/api/v2/buildinfo")[0] == 200
        assert get(server, "/api/v2/deployment/ssh", server.owner_token)[0] == 200
        assert get(server, "/api/v2/deployment/ssh")[0] == 401
        assert server.process.alive()
        output = server.process.output()
        assert "redis unreachable, counting in the node's store" in output

        # Redis back: counting returns to it after the retry pause.
        private_redis.start()
        assert not private_redis.keys("coderapi:*ratelimit*")
        wait_until(
            lambda: (
                get(server, "/api/v2/experiments/available", token)[0] == 200
                and bool(private_redis.keys("coderapi:*ratelimit*"))
            ),
            20,
            "counting back in redis",
        )


# --- a worker killed under load ----------------------------------------------------------------------


def workers_of(master_pid: int) -> set[int]:
    path = pathlib.Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def test_worker_sigkill_under_load(tmp_path: pathlib.Path) -> None:
    # No rate limit: eight clients for several seconds can exceed a user's per-path budget, and what
    # is checked here is the worker restart.
    flags = ("--dangerous-disable-rate-limits",)
    with live_server(tmp_path / "kill", *flags, workers=2, seed=seed_users_with_cli) as server:
        master = server.process.proc.pid
        wait_until(lambda: len(workers_of(master)) == 2, 30, "two workers")
        tokens = [server.owner_token, server.member_token]
        stop = threading.Event()
        statuses: list[int] = []
        failures: list[str] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            paths = ["/api/v2/buildinfo", "/api/v2/deployment/ssh", "/api/v2/users/me/keys/tokens/tokenconfig"]
            i = 0
            while not stop.is_set() and i < 5000:
                path = paths[i % len(paths)]
                i += 1
                try:
                    status, _h, _b = http_request(server.port, "GET", path, {TOKEN_HEADER: tokens[n % 2]}, timeout=10)
                except (OSError, http.client.HTTPException) as err:
                    # A request in flight on the killed worker loses its connection.
                    with lock:
                        failures.append(type(err).__name__)
                    continue
                with lock:
                    statuses.append(status)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(client, n) for n in range(8)]
            time.sleep(2.0)
            before = workers_of(master)
            victim = sorted(before)[0]
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: len(workers_of(master)) == 2 and victim not in workers_of(master), 30, "a new worker")
            time.sleep(2.0)
            stop.set()
            for f in futures:
                f.result(timeout=60)

        assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))
        # Only connections the killed worker held can fail: sync workers hold one at a time, plus
        # what was queued on its accept backlog.
        assert len(failures) <= 8, failures
        assert len(statuses) > 50
        assert server.process.alive()

        # No data lost: the tokens made before still work, one made now works, on every worker.
        new_token = coderapi_cli("tokens", "create", "--user", "member", "--lifetime", "1h", env=server.env)
        for _ in range(10):
            for token in (*tokens, new_token):
                status, _h, body = http_request(
                    server.port, "GET", "/api/v2/users/me/keys/tokens/tokenconfig", {TOKEN_HEADER: token}
                )
                assert status == 200, body
                assert "max_token_lifetime" in json.loads(body)
        # No request was answered with a 5xx (the request log lines carry each status).
        output = server.process.output()
        assert "status=200" in output
        assert re.search(r"status=5\d\d", output) is None


def test_key_lookup_with_the_database_unreachable_raises_sqlalchemy_errors(tmp_path: pathlib.Path) -> None:
    """The token check handles SQLAlchemy's errors; the key lookup's own connection must not leak the
    driver's (an unreachable PostgreSQL answered authenticated requests with an unhandled 500)."""
    from sqlalchemy.exc import SQLAlchemyError

    from coderapi.database import Store

    for url in (f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", f"sqlite:///{tmp_path}/missing/dir/x.db"):
        store = Store(url)
        try:
            with pytest.raises(SQLAlchemyError):
                store.get_api_key_with_user("aaaaaaaaaa")
        finally:
            store.close()
