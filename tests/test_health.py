"""`GET /healthz`: plain OK for load balancers, outside /api/v2 and its middleware."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient


def test_healthz_is_plain_ok(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.data == b"OK"
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["Content-Length"] == "2"


def test_healthz_skips_the_api_middleware(client: FlaskClient) -> None:
    # coderd mounts it before the global middleware: no request id, build version or rate-limit headers.
    resp = client.get("/healthz")
    for name in ("X-Coder-Request-Id", "X-Coder-Build-Version", "X-RateLimit-Limit", "Vary"):
        assert name not in resp.headers


def test_healthz_needs_no_token_and_ignores_a_bad_one(client: FlaskClient) -> None:
    resp = client.get("/healthz", headers={"Coder-Session-Token": "not-a-token"})
    assert resp.status_code == 200
    assert resp.data == b"OK"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_healthz_other_methods_get_405_envelope(client: FlaskClient, method: str) -> None:
    resp = client.open("/healthz", method=method)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"
    if method != "HEAD":
        assert json.loads(resp.data) == {"message": "Method not allowed."}
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("path", ["/healthz/", "/api/v2/healthz", "/healthzz"])
def test_only_the_exact_path_is_the_health_check(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404
    assert json.loads(resp.data) == {"message": "Route not found."}
