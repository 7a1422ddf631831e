"""Prometheus metrics: what each request records, the small recording functions, the exporter."""

from __future__ import annotations

import datetime
import pathlib
import urllib.request

import pytest
from flask import Flask
from prometheus_client import generate_latest
from sqlalchemy.exc import OperationalError

from coderapi import metrics
from coderapi.database import Store
from coderapi.database.engine import make_engine
from coderapi.database.users import User
from coderapi.testing import free_port
from tests.conftest import MakeApp, MakeToken, MakeUser


def sample(m: metrics.Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = m.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else float(value)


@pytest.fixture
def prom_app(make_app: MakeApp) -> Flask:
    return make_app(argv=["--prometheus-enable"])


def of(app: Flask) -> metrics.Metrics:
    m = metrics.of(app)
    assert m is not None
    return m


def test_requests_are_counted_by_route_method_and_status(prom_app: Flask) -> None:
    client = prom_app.test_client()
    for _ in range(3):
        assert client.get("/api/v2/buildinfo").status_code == 200
    assert client.get("/api/v2/does-not-exist/123").status_code == 404
    assert client.get("/api/v2/deployment/ssh").status_code == 401
    m = of(prom_app)
    name = "coderd_api_requests_processed_total"
    assert sample(m, name, {"code": "200", "method": "GET", "path": "/api/v2/buildinfo"}) == 3
    assert sample(m, name, {"code": "404", "method": "GET", "path": metrics.UNMATCHED_ROUTE}) == 1
    assert sample(m, name, {"code": "401", "method": "GET", "path": "/api/v2/deployment/ssh"}) == 1
    hist = "coderd_api_request_latencies_seconds_count"
    assert sample(m, hist, {"method": "GET", "path": "/api/v2/buildinfo"}) == 3
    assert sample(m, "coderd_api_concurrent_requests") == 0


def test_route_label_uses_the_pattern_not_the_path(prom_app: Flask, owner_token: str) -> None:
    client = prom_app.test_client()
    client.get("/api/v2/users/me/keys/tokens/tokenconfig", headers={"Coder-Session-Token": owner_token})
    text = generate_latest(of(prom_app).registry).decode()
    assert 'path="/api/v2/users/{user}/keys/tokens/tokenconfig"' in text
    assert "/users/me/" not in text


def test_auth_failures_are_counted_by_reason(
    prom_app: Flask, member: User, make_user: MakeUser, make_token: MakeToken
) -> None:
    client = prom_app.test_client()
    good = make_token(member)
    key_id = good.split("-", 1)[0]
    expired = make_token(member, expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1))
    suspended = make_token(make_user("sus", status="suspended"))
    requests = {
        "missing": None,
        "malformed": "no-dash-here-but-too-short",
        "invalid_key": "abcdefghij-abcdefghijklmnopqrstuv",
        "invalid_secret": f"{key_id}-{'x' * 22}",
        "expired": expired,
        "inactive_user": suspended,
    }
    for token in requests.values():
        headers = {"Coder-Session-Token": token} if token else {}
        assert client.get("/api/v2/deployment/ssh", headers=headers).status_code == 401
    assert client.get("/api/v2/deployment/ssh", headers={"Coder-Session-Token": good}).status_code == 200
    # A 403 from the RBAC check is not an API-key refusal.
    assert client.get("/api/v2/deployment/config", headers={"Coder-Session-Token": good}).status_code == 403
    m = of(prom_app)
    for reason in requests:
        assert sample(m, "coderapi_auth_failures_total", {"reason": reason}) == 1, reason
    assert sample(m, "coderapi_auth_failures_total", {"reason": "other"}) == 0
    assert sample(m, "coderapi_auth_failures_total", {"reason": "forbidden"}) == 0


def test_rate_limited_requests_are_counted_by_route(make_app: MakeApp) -> None:
    app = make_app(argv=["--prometheus-enable", "--api-rate-limit", "2"])
    client = app.test_client()
    statuses = [client.get("/api/v2/buildinfo").status_code for _ in range(4)]
    assert statuses.count(429) >= 1
    m = of(app)
    assert sample(m, "coderapi_rate_limited_requests_total", {"path": "/api/v2/buildinfo"}) == statuses.count(429)


def test_a_failing_key_lookup_is_counted_as_internal_error(
    prom_app: Flask, store: Store, member_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_key_id: str) -> None:
        raise OperationalError("SELECT …", {}, Exception("connection refused"))

    monkeypatch.setattr(store, "get_api_key_with_user", broken)
    resp = prom_app.test_client().get("/api/v2/deployment/ssh", headers={"Coder-Session-Token": member_token})
    assert resp.status_code == 401
    m = of(prom_app)
    assert sample(m, "coderapi_auth_failures_total", {"reason": "internal_error"}) == 1
    assert sample(m, "coderapi_auth_failures_total", {"reason": "other"}) == 0


def test_a_refusal_of_a_public_path_is_no_auth_failure(make_app: MakeApp) -> None:
    """The rate limiter identifies every /api/v2 request's token; a bad one on a public path is answered
    (200), not refused, and counts as no refusal."""
    app = make_app(argv=["--prometheus-enable", "--api-rate-limit", "100"])
    resp = app.test_client().get("/api/v2/buildinfo", headers={"Coder-Session-Token": "bad"})
    assert resp.status_code == 200
    m = of(app)
    for family in m.registry.collect():
        if family.name == "coderapi_auth_failures":
            assert [s for s in family.samples if s.value] == []


def test_recording_functions(prom_app: Flask) -> None:
    with prom_app.app_context():
        metrics.csp_violation("script-src")
        metrics.csp_violation("")
        metrics.csp_violation("Script-Src 'self' https://x")
        metrics.csp_violation("made-up-" * 20)
    m = of(prom_app)
    # The app's stats cache records its own refreshes in the background too.
    before = sample(m, "coderapi_deployment_stats_refresh_seconds_count")
    metrics.observe_stats_refresh(0.02, prom_app)
    assert sample(m, "coderapi_csp_violations_total", {"directive": "script-src"}) == 2
    assert sample(m, "coderapi_csp_violations_total", {"directive": "other"}) == 1
    assert sample(m, "coderapi_csp_violations_total", {"directive": "unknown"}) == 1
    assert sample(m, "coderapi_deployment_stats_refresh_seconds_count") - before >= 1


def test_recording_is_a_no_op_when_prometheus_is_off(app: Flask) -> None:
    assert metrics.of(app) is None
    with app.app_context():
        metrics.csp_violation("img-src")
    metrics.observe_stats_refresh(1.0, app)
    metrics.csp_violation("img-src")  # no app context: nothing to record, no error
    assert app.test_client().get("/api/v2/buildinfo").status_code == 200


def test_db_pool_gauge_follows_checkouts(tmp_path: pathlib.Path) -> None:
    # An engine of its own: the app's pool is shared with background services.
    engine = make_engine("sqlite:///" + str(tmp_path / "pool.db"))
    try:
        with engine.connect():
            pass
        m = metrics.Metrics()
        m.watch_pool(engine)
        assert sample(m, "coderapi_db_pool_connections", {"state": "open"}) == 1
        assert sample(m, "coderapi_db_pool_connections", {"state": "in_use"}) == 0
        with engine.connect():
            assert sample(m, "coderapi_db_pool_connections", {"state": "in_use"}) == 1
            with engine.connect():
                assert sample(m, "coderapi_db_pool_connections", {"state": "in_use"}) == 2
                assert sample(m, "coderapi_db_pool_connections", {"state": "open"}) == 2
        assert sample(m, "coderapi_db_pool_connections", {"state": "in_use"}) == 0
        engine.dispose()
        assert sample(m, "coderapi_db_pool_connections", {"state": "open"}) == 0
    finally:
        engine.dispose()


def test_app_pool_is_watched(prom_app: Flask) -> None:
    text = generate_latest(of(prom_app).registry).decode()
    assert 'coderapi_db_pool_connections{state="open"}' in text


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        ("/api/v2/buildinfo", "/api/v2/buildinfo"),
        ("/api/v2/users/<user>/keys", "/api/v2/users/{user}/keys"),
        ("/api/v2/x/<int:id>", "/api/v2/x/{id}"),
        (None, metrics.UNMATCHED_ROUTE),
    ],
)
def test_route_label(rule: str | None, label: str) -> None:
    assert metrics.route_label(rule) == label


def test_exporter_serves_the_registry(prom_app: Flask) -> None:
    prom_app.test_client().get("/api/v2/buildinfo")
    exporter = metrics.Exporter("127.0.0.1", free_port(), of(prom_app).exposition_registry())
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        exporter.stop()
    assert 'coderd_api_requests_processed_total{code="200",method="GET",path="/api/v2/buildinfo"} 1.0' in body


def test_csp_reports_are_counted_by_directive(prom_app: Flask, owner_token: str) -> None:
    client = prom_app.test_client()
    headers = {"Coder-Session-Token": owner_token, "Content-Type": "application/csp-report"}
    reports = [
        b'{"csp-report":{"effective-directive":"img-src","violated-directive":"img-src https:"}}',
        b'{"csp-report":{"violated-directive":"script-src"}}',
        b'{"csp-report":{}}',
    ]
    for body in reports:
        assert client.post("/api/v2/csp/reports", data=body, headers=headers).status_code == 200
    assert client.post("/api/v2/csp/reports", data=b"{", headers=headers).status_code == 400
    m = of(prom_app)
    assert sample(m, "coderapi_csp_violations_total", {"directive": "img-src"}) == 1
    assert sample(m, "coderapi_csp_violations_total", {"directive": "script-src"}) == 1
    assert sample(m, "coderapi_csp_violations_total", {"directive": "unknown"}) == 1


def test_made_up_methods_share_one_label(prom_app: Flask) -> None:
    client = prom_app.test_client()
    for i in range(50):
        assert client.open("/api/v2/buildinfo", method=f"MADEUP{i}").status_code == 405
    assert client.open("/api/v2/buildinfo", method="DELETE").status_code == 405
    m = of(prom_app)
    name = "coderd_api_requests_processed_total"
    assert sample(m, name, {"code": "405", "method": "other", "path": metrics.UNMATCHED_ROUTE}) == 50
    assert sample(m, name, {"code": "405", "method": "DELETE", "path": metrics.UNMATCHED_ROUTE}) == 1
    assert (
        sample(m, "coderd_api_request_latencies_seconds_count", {"method": "other", "path": metrics.UNMATCHED_ROUTE})
        == 50
    )
    text = generate_latest(m.registry).decode()
    assert "MADEUP" not in text


def test_every_label_of_every_metric_has_a_bounded_set(prom_app: Flask, owner_token: str) -> None:
    client = prom_app.test_client()
    for i in range(20):
        client.open(f"/api/v2/x{i}/{i}?q={i}", method=f"M{i}", headers={"Coder-Session-Token": f"bad{i}"})
        client.post("/api/v2/csp/reports", json={"csp-report": {"effective-directive": f"made-up-{i}"}})
        client.get(f"/api/v2/users/u{i}", headers={"Coder-Session-Token": owner_token})
    bounded = {
        "code": {str(c) for c in range(100, 600)} | {"other"},
        "method": metrics.KNOWN_METHODS | {metrics.OTHER_METHOD},
        "directive": metrics.CSP_DIRECTIVES | {"unknown", "other"},
        "state": {"open", "in_use"},
        "reason": {
            "missing",
            "malformed",
            "invalid_key",
            "invalid_secret",
            "expired",
            "inactive_user",
            "internal_error",
            "forbidden",
            "other",
        },
    }
    routes = {metrics.route_label(rule.rule) for rule in prom_app.url_map.iter_rules()} | {metrics.UNMATCHED_ROUTE}
    for family in of(prom_app).registry.collect():
        for s in family.samples:
            for label, value in s.labels.items():
                if label == "le":
                    continue
                allowed = routes if label == "path" else bounded[label]
                assert value in allowed, (family.name, label, value)
