"""Rate limiting on /api/v2: in process, through Redis, across gunicorn workers and nodes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from coderapi import apikey
from coderapi.config.settings import Settings
from coderapi.database import Store
from coderapi.httpmw.ratelimit import _ip_key, configured_limit
from coderapi.serving import default_workers
from coderapi.testing import ServerProcess, seed_users
from tests import services
from tests.conftest import MakeApp, StartServer, http_request

Auth = Callable[[str], dict[str, str]]
PROBE = "/api/v2/users/me/keys/tokens/tokenconfig"
LIMIT5 = {"CODER_API_RATE_LIMIT": "5"}


def fresh_window(needed: float = 3.0) -> None:
    """Wait out the end of the current minute when fewer than `needed` seconds are left: the counters'
    windows are aligned to the minute, and a count straddling two windows is weighted, not exact."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)


def limited(n: int = 5) -> bytes:
    return f'{{"message":"You\'ve been rate limited for sending more than {n} requests in 1m0s."}}\n'.encode()


def assert_429(resp: object, n: int = 5) -> None:
    assert resp.status_code == 429  # type: ignore[attr-defined]
    assert resp.data == limited(n)  # type: ignore[attr-defined]
    headers = resp.headers  # type: ignore[attr-defined]
    assert headers["Retry-After"] == "60"
    assert headers["X-RateLimit-Limit"] == str(n)
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) % 60 == 0


def test_sixth_request_is_refused(make_app: MakeApp, auth: Auth, member_token: str) -> None:
    fresh_window()
    client = make_app(env=LIMIT5).test_client()
    now = int(time.time())
    for i in range(5):
        resp = client.get(PROBE, headers=auth(member_token))
        assert resp.status_code == 200
        assert resp.headers["X-RateLimit-Limit"] == "5"
        assert resp.headers["X-RateLimit-Remaining"] == str(4 - i)
        reset = int(resp.headers["X-RateLimit-Reset"])
        assert now < reset <= now + 61 and reset % 60 == 0
    assert_429(client.get(PROBE, headers=auth(member_token)))


def test_budget_is_per_path(make_app: MakeApp, auth: Auth, member_token: str) -> None:
    fresh_window()
    client = make_app(env=LIMIT5).test_client()
    for _ in range(5):
        client.get(PROBE, headers=auth(member_token))
    assert client.get(PROBE, headers=auth(member_token)).status_code == 429
    assert client.get("/api/v2/users/member/keys/tokens/tokenconfig", headers=auth(member_token)).status_code == 200


def test_extra_slashes_share_the_budget(make_app: MakeApp) -> None:
    # The routed path counts (runs of `/` collapsed): coderd keys on the raw path, so N slashes would
    # give N budgets; here they give one.
    fresh_window()
    client = make_app(env=LIMIT5).test_client()
    paths = ["/api/v2/experiments", "/api/v2//experiments", "/api/v2///experiments"]
    statuses = [client.get(paths[i % len(paths)]).status_code for i in range(8)]
    assert statuses.count(429) == 3, statuses
    assert_429(client.get("/api/v2////experiments"))


def test_budget_is_per_user_with_a_valid_token(
    make_app: MakeApp, auth: Auth, member_token: str, owner_token: str
) -> None:
    fresh_window()
    client = make_app(env=LIMIT5).test_client()
    for _ in range(5):
        client.get(PROBE, headers=auth(member_token))
    assert client.get(PROBE, headers=auth(member_token)).status_code == 429
    # Same IP, other user: own budget. Same IP without a token: the IP's own budget.
    assert client.get(PROBE, headers=auth(owner_token)).status_code == 200
    assert client.get(PROBE).status_code == 401


def test_unauthenticated_counted_per_ip_including_401_and_404(make_app: MakeApp) -> None:
    fresh_window()
    client = make_app(env=LIMIT5).test_client()
    for _ in range(5):
        assert client.get("/api/v2/nope").status_code == 404
    assert_429(client.get("/api/v2/nope"))
    for _ in range(5):
        assert client.get(PROBE, headers={"Coder-Session-Token": "bad"}).status_code == 401
    assert_429(client.get(PROBE))
    assert client.get(PROBE, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 401


def test_public_routes_and_csp_are_limited(make_app: MakeApp, auth: Auth, member_token: str) -> None:
    fresh_window()
    client = make_app(env=LIMIT5).test_client()
    for _ in range(5):
        assert client.get("/api/v2/buildinfo").status_code == 200
    assert client.get("/api/v2/buildinfo").status_code == 429
    for _ in range(5):
        assert client.post("/api/v2/csp/reports", data="{}", headers=auth(member_token)).status_code == 200
    assert client.post("/api/v2/csp/reports", data="{}", headers=auth(member_token)).status_code == 429


def test_owner_bypass(make_app: MakeApp, auth: Auth, owner_token: str, member_token: str) -> None:
    fresh_window()
    client = make_app(env=LIMIT5).test_client()
    for value in ("true", "1", "T", "TRUE", "True", "t"):
        for _ in range(2):
            resp = client.get(PROBE, headers=auth(owner_token) | {"X-Coder-Bypass-Ratelimit": value})
            assert resp.status_code == 200
            assert (resp.headers["X-RateLimit-Limit"], resp.headers["X-RateLimit-Remaining"]) == ("5", "4")
    # The bypassed requests were not counted against the owner's own budget.
    for _ in range(5):
        assert client.get(PROBE, headers=auth(owner_token)).status_code == 200
    assert client.get(PROBE, headers=auth(owner_token)).status_code == 429
    resp = client.get(PROBE, headers=auth(member_token) | {"X-Coder-Bypass-Ratelimit": "true"})
    assert resp.status_code == 428
    assert resp.data == b'"X-Coder-Bypass-Ratelimit" provided but user is not owner\n'
    assert resp.headers["Content-Type"].startswith("text/plain")
    # A false value is no bypass attempt; without a valid token the header is ignored.
    assert client.get(PROBE, headers=auth(member_token) | {"X-Coder-Bypass-Ratelimit": "false"}).status_code == 200
    assert client.get(PROBE, headers={"X-Coder-Bypass-Ratelimit": "true"}).status_code == 401


@pytest.mark.parametrize(
    ("argv", "env"), [((), {"CODER_API_RATE_LIMIT": "-1"}), (("--dangerous-disable-rate-limits",), LIMIT5)]
)
def test_disabled(make_app: MakeApp, auth: Auth, member_token: str, argv: tuple[str, ...], env: dict[str, str]) -> None:
    client = make_app(argv=argv, env=env).test_client()
    for _ in range(8):
        resp = client.get(PROBE, headers=auth(member_token))
        assert resp.status_code == 200
        assert "X-RateLimit-Limit" not in resp.headers


def test_default_limit_is_512(client: FlaskClient) -> None:
    assert client.get("/api/v2/buildinfo").headers["X-RateLimit-Limit"] == "512"
    assert configured_limit(0, False) == 512
    assert configured_limit(-1, False) == -1
    assert configured_limit(100, True) == -1


def test_not_applied_outside_api(client: FlaskClient) -> None:
    assert "X-RateLimit-Limit" not in client.get("/healthz").headers


def test_ipv6_keyed_by_64_prefix() -> None:
    assert _ip_key("2001:db8:1:2:3:4:5:6") == _ip_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::"
    assert _ip_key("10.0.0.1") == "10.0.0.1"


# --- Redis ------------------------------------------------------------------------------------------


@pytest.fixture
def redis_settings(settings: Settings) -> Settings:
    services.require_redis()
    return dataclasses.replace(settings, rate_limit_redis_url=services.REDIS_URL)


@pytest.mark.redis
def test_two_apps_sharing_redis_count_together(
    make_app: MakeApp, redis_settings: Settings, auth: Auth, member_token: str
) -> None:
    fresh_window()
    # Same database (so the same deployment id and key prefix), same Redis: one budget.
    node_a = make_app(env=LIMIT5, settings=redis_settings).test_client()
    node_b = make_app(env=LIMIT5, settings=redis_settings).test_client()
    for client in (node_a, node_b, node_a, node_b, node_a):
        assert client.get(PROBE, headers=auth(member_token)).status_code == 200
    assert_429(node_b.get(PROBE, headers=auth(member_token)))
    assert_429(node_a.get(PROBE, headers=auth(member_token)))


@pytest.mark.redis
def test_each_deployment_has_its_own_counters(
    make_app: MakeApp, redis_settings: Settings, auth: Auth, member_token: str, tmp_path: object
) -> None:
    fresh_window()
    from pathlib import Path

    other_store = Store("sqlite:///" + str(Path(str(tmp_path)) / "other.db"))
    other_store.migrate()
    try:
        node_a = make_app(env=LIMIT5, settings=redis_settings).test_client()
        node_b = make_app(env=LIMIT5, settings=redis_settings, store=other_store).test_client()
        for _ in range(5):
            node_a.get("/api/v2/buildinfo")
        assert node_a.get("/api/v2/buildinfo").status_code == 429
        assert node_b.get("/api/v2/buildinfo").status_code == 200
    finally:
        other_store.close()


def test_unreachable_redis_falls_back_to_the_node_store(
    make_app: MakeApp, settings: Settings, auth: Auth, member_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_window()
    broken = dataclasses.replace(settings, rate_limit_redis_url="redis://127.0.0.1:9/0")
    client = make_app(env=LIMIT5, settings=broken).test_client()
    caplog.set_level(logging.WARNING, logger="coderapi.httpmw.ratelimit")
    for _ in range(5):
        assert client.get(PROBE, headers=auth(member_token)).status_code == 200
    assert_429(client.get(PROBE, headers=auth(member_token)))
    warnings = [r for r in caplog.records if "redis unreachable" in r.getMessage()]
    assert len(warnings) == 1


# --- real gunicorn ----------------------------------------------------------------------------------


def _get(url: str, token: str) -> int:
    req = urllib.request.Request(url, headers={"Coder-Session-Token": token})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.close()
        return int(err.code)


def _token_for(db_url: str) -> str:
    store = Store(db_url)
    try:
        user = store.insert_user("load", "load@example.com")
        return apikey.issue(store, user.id, dt.timedelta(hours=1))
    finally:
        store.close()


def _hammer(urls: list[str], token: str, total: int) -> list[int]:
    """`total` requests spread over the urls from 8 threads at once, so every worker gets some."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: _get(urls[i % len(urls)], token), range(total)))


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_gunicorn_workers_and_nodes_count_together_through_redis(start_server: StartServer, pg_url: str) -> None:
    services.require_redis()
    env = {
        "CODER_PG_CONNECTION_URL": pg_url,
        "CODER_API_RATE_LIMIT": "20",
        "CODERAPI_RATE_LIMIT_REDIS_URL": services.REDIS_URL,
    }
    _truncate(pg_url)
    node_a = start_server(env=env, workers=2, name="a")
    node_b = start_server(env=env, workers=2, name="b")
    token = _token_for(pg_url)
    # Two workers on one node: exactly the limit gets through.
    fresh_window(10)
    statuses = _hammer([node_a.url + PROBE], token, 40)
    assert statuses.count(200) == 20, statuses
    assert statuses.count(429) == 20
    # Another path, now over both nodes (four workers): still one budget.
    other = "/api/v2/users/load/keys/tokens/tokenconfig"
    fresh_window(10)
    statuses = _hammer([node_a.url + other, node_b.url + other], token, 40)
    assert statuses.count(200) == 20, statuses


def _truncate(pg_url: str) -> None:
    from sqlalchemy import text

    from coderapi.database.tables import metadata

    store = Store(pg_url)
    try:
        names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
        with store.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} CASCADE"))
    finally:
        store.close()


# --- one budget per node, without Redis -------------------------------------------------------------


def _parallel(port: int, path: str, n: int, headers: dict[str, str] | None = None) -> list[int]:
    """`n` requests at once, each from its own thread on its own connection."""
    start = threading.Barrier(n)

    def one(_: int) -> int:
        start.wait()
        return http_request(port, "GET", path, headers)[0]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def _wait_workers_ready(server: ServerProcess, count: int, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.output().count("Worker ready") >= count:
            return
        time.sleep(0.1)
    pytest.fail(f"fewer than {count} workers ready: {server.output()[-2000:]}")


@pytest.mark.slow
def test_default_workers_of_one_server_share_one_budget(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(env={"CODER_API_RATE_LIMIT": "3"}, workers=None, name="node")
    workers = default_workers()
    assert workers > 1
    _wait_workers_ready(server, workers)
    token = seed_users({"CODERAPI_DATA_DIR": str(tmp_path / "node")})["member"][1]

    fresh_window(10)
    statuses = _parallel(server.port, "/api/v2/buildinfo", 32)
    assert (statuses.count(200), statuses.count(429)) == (3, 29), statuses
    statuses = _parallel(server.port, PROBE, 24, {"Coder-Session-Token": token})
    assert (statuses.count(200), statuses.count(429)) == (3, 21), statuses
