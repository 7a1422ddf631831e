"""CORS as coderd's go-chi/cors setup: preflights answered before auth, permissive only when asked."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.conftest import MakeApp

PREFLIGHT = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"}


@pytest.mark.parametrize("path", ["/api/v2/deployment/config", "/api/v2/buildinfo", "/api/v2/nope"])
def test_preflight_is_200_before_auth_with_vary_lines_only(client: FlaskClient, path: str) -> None:
    resp = client.options(path, headers=PREFLIGHT)
    assert resp.status_code == 200
    assert resp.data == b""
    assert "Content-Type" not in resp.headers
    assert resp.headers.getlist("Vary") == ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"]
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "X-Content-Type-Options" not in resp.headers
    assert "WWW-Authenticate" not in resp.headers
    assert "X-RateLimit-Limit" not in resp.headers
    assert resp.headers["X-Coder-Request-Id"]
    assert resp.headers["X-Coder-Build-Version"]


def test_options_without_preflight_header_is_405(client: FlaskClient) -> None:
    assert client.options("/api/v2/buildinfo").status_code == 405


def test_default_allows_no_origin(client: FlaskClient) -> None:
    resp = client.get("/api/v2/buildinfo", headers={"Origin": "https://elsewhere.example"})
    assert resp.status_code == 200
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_allow_all_cors(make_app: MakeApp) -> None:
    client = make_app(argv=["--dangerous-allow-cors-requests"]).test_client()
    resp = client.get("/api/v2/buildinfo", headers={"Origin": "https://elsewhere.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in client.get("/api/v2/buildinfo").headers
    pre = client.options(
        "/api/v2/buildinfo", headers={**PREFLIGHT, "Access-Control-Request-Headers": "x-csrf-token, accept"}
    )
    assert pre.status_code == 200
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert pre.headers["Access-Control-Allow-Methods"] == "GET"
    assert pre.headers["Access-Control-Allow-Headers"] == "X-Csrf-Token, Accept"
    refused = client.options("/api/v2/csp/reports", headers={**PREFLIGHT, "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 200
    assert "Access-Control-Allow-Origin" not in refused.headers
    odd_header = client.options("/api/v2/buildinfo", headers={**PREFLIGHT, "Access-Control-Request-Headers": "X-Evil"})
    assert "Access-Control-Allow-Origin" not in odd_header.headers
