"""Prometheus metrics: what each request records, the small recording functions, the exporter."""

from __future__ import annotations

import pathlib
import urllib.request

import pytest
from flask import Flask
from prometheus_client import generate_latest

from coderapi import metrics
from coderapi.database.engine import make_engine
from tests.conftest import MakeApp, free_port


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


def test_auth_failures_are_counted_by_reason(prom_app: Flask) -> None:
    client = prom_app.test_client()
    client.get("/api/v2/deployment/ssh")
    with prom_app.app_context():
        metrics.auth_failure("expired")
    m = of(prom_app)
    assert sample(m, "coderapi_auth_failures_total", {"reason": "expired"}) == 1


def test_recording_functions(prom_app: Flask) -> None:
    with prom_app.app_context():
        metrics.rate_limited("ip")
        metrics.rate_limited("ip")
        metrics.csp_violation("script-src")
        metrics.csp_violation("")
    m = of(prom_app)
    # The app's stats cache records its own refreshes in the background too.
    before = sample(m, "coderapi_deployment_stats_refresh_seconds_count")
    metrics.observe_stats_refresh(0.02, prom_app)
    with metrics.time_stats_refresh(prom_app):
        pass
    assert sample(m, "coderapi_rate_limited_requests_total", {"key": "ip"}) == 2
    assert sample(m, "coderapi_csp_violations_total", {"directive": "script-src"}) == 1
    assert sample(m, "coderapi_csp_violations_total", {"directive": "unknown"}) == 1
    assert sample(m, "coderapi_deployment_stats_refresh_seconds_count") - before >= 2


def test_recording_is_a_no_op_when_prometheus_is_off(app: Flask) -> None:
    assert metrics.of(app) is None
    with app.app_context():
        metrics.auth_failure("missing")
        metrics.rate_limited("user")
        metrics.csp_violation("img-src")
    metrics.observe_stats_refresh(1.0, app)
    metrics.auth_failure("outside any app")  # no app context: nothing to record, no error
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
