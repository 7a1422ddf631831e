"""The public foundation: API root, build info, the envelope for 404/405/500, and common headers."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient

from coderapi import __version__
from tests.conftest import MakeApp

BUILDINFO_KEYS = [
    "external_url",
    "version",
    "dashboard_url",
    "telemetry",
    "workspace_proxy",
    "agent_api_version",
    "provisioner_api_version",
    "upgrade_message",
    "deployment_id",
    "webpush_public_key",
]


@pytest.mark.parametrize("path", ["/api/v2", "/api/v2/"])
def test_api_root_bytes(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200
    assert resp.data == '{"message":"👋"}\n'.encode()
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


def test_buildinfo_has_every_key_in_order(client: FlaskClient) -> None:
    resp = client.get("/api/v2/buildinfo")
    assert resp.status_code == 200
    body = json.loads(resp.data)
    assert list(body) == BUILDINFO_KEYS
    assert body["version"].startswith("v" + __version__)
    assert re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+(\+[0-9a-f]{7})?", body["version"])
    # No source repository is configured: no link that could point at a page that does not exist.
    assert body["external_url"] == ""
    # No access URL: the URL the server listens on (coderd's default http address).
    assert body["dashboard_url"] == "http://127.0.0.1:3000"
    assert body["workspace_proxy"] is False
    assert body["agent_api_version"] == "1.0"
    assert body["provisioner_api_version"] == "1.14"
    assert body["webpush_public_key"] == ""
    assert body["upgrade_message"] == ""
    assert str(uuid.UUID(body["deployment_id"])) == body["deployment_id"]


def test_buildinfo_reflects_configuration(make_app: MakeApp) -> None:
    app = make_app(
        env={
            "CODER_ACCESS_URL": "https://coder.example.com",
            "CODER_CLI_UPGRADE_MESSAGE": "run <upgrade> & enjoy",
            "CODER_TELEMETRY_ENABLE": "false",
        }
    )
    resp = app.test_client().get("/api/v2/buildinfo")
    body = json.loads(resp.data)
    assert body["dashboard_url"] == "https://coder.example.com"
    assert body["upgrade_message"] == "run <upgrade> & enjoy"
    assert b"\\u003cupgrade\\u003e \\u0026 enjoy" in resp.data
    assert body["telemetry"] is False


def test_buildinfo_webpush_key_with_the_experiment(make_app: MakeApp) -> None:
    first = json.loads(make_app(env={"CODER_EXPERIMENTS": "web-push"}).test_client().get("/api/v2/buildinfo").data)
    assert re.fullmatch(r"[A-Za-z0-9_-]{87}", first["webpush_public_key"])
    again = json.loads(make_app(env={"CODER_EXPERIMENTS": "web-push"}).test_client().get("/api/v2/buildinfo").data)
    assert again["webpush_public_key"] == first["webpush_public_key"]


def test_deployment_id_is_the_same_across_apps_on_one_store(make_app: MakeApp) -> None:
    one = json.loads(make_app().test_client().get("/api/v2/buildinfo").data)["deployment_id"]
    two = json.loads(make_app().test_client().get("/api/v2/buildinfo").data)["deployment_id"]
    assert one == two


@pytest.mark.parametrize("path", ["/api/v2/nope", "/api/v2/buildinfo/", "/api/v2/buildinfo/x", "/nope"])
def test_unknown_path_is_route_not_found(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404
    assert resp.data == b'{"message":"Route not found."}\n'
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_wrong_method_is_405_with_allow_and_envelope(client: FlaskClient, method: str) -> None:
    resp = client.open("/api/v2/buildinfo", method=method)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"
    if method != "HEAD":
        assert resp.data == b'{"message":"Method not allowed."}\n'


def test_unhandled_exception_is_a_500_envelope_with_the_traceback_only_in_the_log(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app: Flask = make_app()

    def boom() -> str:
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v2/boom", "boom", boom)
    with caplog.at_level(logging.ERROR):
        resp = app.test_client().get("/api/v2/boom")
    assert resp.status_code == 500
    assert resp.data == b'{"message":"An internal server error occurred."}\n'
    assert b"secret internals" not in resp.data
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


def test_common_headers_on_every_response(client: FlaskClient) -> None:
    for path in ("/api/v2/", "/api/v2/nope"):
        resp = client.get(path)
        rid = uuid.UUID(resp.headers["X-Coder-Request-Id"])
        assert str(rid) == resp.headers["X-Coder-Request-Id"]
        assert (rid.version, rid.variant) == (4, uuid.RFC_4122)
        assert resp.headers["X-Coder-Build-Version"].startswith("v" + __version__)
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers.getlist("Vary") == ["Origin", "Cookie"]
    ids = {client.get("/api/v2/").headers["X-Coder-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_runs_of_slashes_route_like_one(client: FlaskClient) -> None:
    resp = client.get("/api/v2//buildinfo")
    assert resp.status_code == 200
    assert json.loads(resp.data)["agent_api_version"] == "1.0"


def test_prebuilt_answers_are_fresh_for_every_request(make_app: MakeApp, member_token: str) -> None:
    """Constant bodies are encoded once (Runtime.answers), but every request gets a response of its own:
    the headers each request adds (request id, rate limit, CORS) and whatever an `after_request` does to
    one response never reach the next."""
    app = make_app(env={"CODER_API_RATE_LIMIT": "50", "CODER_DANGEROUS_ALLOW_CORS_REQUESTS": "true"})
    marked: list[str] = []

    @app.after_request
    def mark_the_first(resp: Response) -> Response:
        if not marked:
            resp.headers["X-Marked"] = "first"
            marked.append(resp.headers["X-Marked"])
        return resp

    client = app.test_client()
    headers = {"Coder-Session-Token": member_token, "Origin": "https://example.com"}
    seen = []
    for i in range(3):
        resp = client.get("/api/v2/deployment/ssh", headers=headers)
        assert resp.status_code == 200
        assert resp.headers.getlist("X-Ratelimit-Remaining") == [resp.headers["X-Ratelimit-Remaining"]]
        assert len(resp.headers.getlist("X-Coder-Request-Id")) == 1
        assert resp.headers.getlist("Access-Control-Allow-Origin") == ["*"]
        assert resp.headers.getlist("Content-Type") == ["application/json; charset=utf-8"]
        assert resp.headers.getlist("Content-Length") == [str(len(resp.data))]
        assert resp.headers.getlist("X-Marked") == (["first"] if i == 0 else [])
        seen.append(int(resp.headers["X-Ratelimit-Remaining"]))
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 3


def test_two_apps_in_one_process_keep_their_own_stack(make_app: MakeApp, member_token: str) -> None:
    """Each app's hooks are its own (the blueprints are module-level, shared by every app)."""
    limited = make_app(env={"CODER_API_RATE_LIMIT": "1"})
    unlimited = make_app(argv=["--dangerous-disable-rate-limits"])
    for _ in range(3):
        resp = unlimited.test_client().get("/api/v2/buildinfo")
        assert resp.status_code == 200
        assert "X-Ratelimit-Limit" not in resp.headers
    assert 429 in [limited.test_client().get("/api/v2/buildinfo").status_code for _ in range(3)]
    for app in (limited, unlimited):
        client = app.test_client()
        resp = client.get("/api/v2/users/me/keys/tokens/tokenconfig", headers={"Coder-Session-Token": member_token})
        assert resp.status_code == 200
        assert client.get("/api/v2/users/nobody-by-that-name/keys/tokens/tokenconfig").status_code == 401
