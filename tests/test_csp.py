"""POST /api/v2/csp/reports."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from coderapi.sdk.csp import GoJSONError, decode_violation

Auth = Callable[[str], dict[str, str]]
URL = "/api/v2/csp/reports"
REPORT = {
    "csp-report": {
        "document-uri": "https://coder.example.com/workspaces",
        "violated-directive": "script-src 'self'",
        "blocked-uri": "https://evil.example.com/x.js",
    }
}


def test_report_accepted_with_any_content_type(client: FlaskClient, auth: Auth, member_token: str) -> None:
    for ctype in ("application/csp-report", "application/json", "text/plain", None):
        headers = auth(member_token) | ({"Content-Type": ctype} if ctype else {})
        resp = client.post(URL, data=json.dumps(REPORT), headers=headers)
        assert resp.status_code == 200
        assert resp.data == b'"ok"\n'
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


def test_report_logged_at_debug_with_fields(
    client: FlaskClient, auth: Auth, member_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="coderapi.csp")
    client.post(URL, data=json.dumps(REPORT), headers=auth(member_token))
    records = [r for r in caplog.records if r.name == "coderapi.csp"]
    assert [r.levelno for r in records] == [logging.DEBUG]
    lines = [r.getMessage() for r in records]
    assert lines[0].startswith("CSP violation reported ")
    assert "violated-directive=\"script-src 'self'\"" in lines[0]
    assert 'blocked-uri="https://evil.example.com/x.js"' in lines[0]


@pytest.mark.wire_format("reference")
def test_token_required(client: FlaskClient) -> None:
    resp = client.post(URL, data=json.dumps(REPORT), content_type="application/csp-report")
    assert resp.status_code == 401
    assert json.loads(resp.data)["message"].startswith("You are signed out")


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "EOF"),
        (b"  \n", "EOF"),
        (b"{", "unexpected EOF"),
        (b'{"csp-report": {"a": ', "unexpected EOF"),
        (b'{"a', "unexpected EOF"),
        (b"abc", "invalid character 'a' looking for beginning of value"),
        (b"{abc}", "invalid character 'a' looking for beginning of object key string"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b'{"a": 1 "b": 2}', "invalid character '\"' after object key:value pair"),
        (b'{"a": [1 2]}', "invalid character '2' after array element"),
        (b'{"a": NaN}', "invalid character 'N' looking for beginning of value"),
        (b'{"a": "x\ny"}', "invalid character '\\n' in string literal"),
        (b"[]", "json: cannot unmarshal array into Go value of type coderd.cspViolation"),
        (b'"x"', "json: cannot unmarshal string into Go value of type coderd.cspViolation"),
        (b"12", "json: cannot unmarshal number into Go value of type coderd.cspViolation"),
        (
            b'{"csp-report": "x"}',
            "json: cannot unmarshal string into Go struct field cspViolation.csp-report"
            " of type map[string]interface {}",
        ),
        (
            b'{"CSP-Report": [1]}',
            "json: cannot unmarshal array into Go struct field cspViolation.csp-report of type map[string]interface {}",
        ),
    ],
)
def test_invalid_json(client: FlaskClient, auth: Auth, member_token: str, data: bytes, detail: str) -> None:
    resp = client.post(URL, data=data, headers=auth(member_token))
    assert resp.status_code == 400
    assert json.loads(resp.data) == {"message": "Failed to read body, invalid json.", "detail": detail}


@pytest.mark.parametrize(
    "data", [b"{}", b"null", b'{"csp-report": null}', b'{"csp-report": {}} trailing garbage', b'{"other": 1}']
)
def test_empty_reports_are_fine(client: FlaskClient, auth: Auth, member_token: str, data: bytes) -> None:
    resp = client.post(URL, data=data, headers=auth(member_token))
    assert resp.status_code == 200
    assert resp.data == b'"ok"\n'


def test_key_matching() -> None:
    assert decode_violation(b'{"CSP-REPORT": {"a": 1}}') == {"a": 1}
    assert decode_violation(b'{"csp-report": {"a": 1}, "CSP-REPORT": {"b": 2}}') == {"a": 1}
    assert decode_violation(b'{"csp-report": {"a": 1}, "csp-report": {"b": 2}}') == {"b": 2}


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 60_000,
        b'{"csp-report": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        b'{"csp-report": {"a": "\xff\xfe"}}',
        b"\xef\xbb\xbf{}",
        b'{"csp-report": {"a": "\\ud800"}}' + b"\x80",
    ],
)
def test_pathological_bodies_are_400(client: FlaskClient, auth: Auth, member_token: str, data: bytes) -> None:
    resp = client.post(URL, data=data, headers=auth(member_token))
    assert resp.status_code == 400
    assert json.loads(resp.data)["message"] == "Failed to read body, invalid json."


def test_deep_nesting_detail() -> None:
    with pytest.raises(GoJSONError, match="exceeded max depth"):
        decode_violation(b'{"csp-report": {"a": ' + b"[" * 10_001 + b"]" * 10_001 + b"}}")
    # Nesting below Go's limit decodes.
    value = decode_violation(b'{"csp-report": {"a": ' + b"[" * 500 + b"]" * 500 + b"}}")["a"]
    depth = 0
    while value:
        value, depth = value[0], depth + 1
    assert depth == 499


def test_oversized_body_is_413(client: FlaskClient, auth: Auth, member_token: str) -> None:
    big = json.dumps({"csp-report": {"a": "x" * (64 * 1024)}}).encode()
    resp = client.post(URL, data=big, headers=auth(member_token))
    assert resp.status_code == 413
    assert json.loads(resp.data) == {"message": "Request body too large."}
    just_fits = b'{"csp-report":{"a":"' + b"x" * (64 * 1024 - 24) + b'"}}'
    assert len(just_fits) <= 64 * 1024
    assert client.post(URL, data=just_fits, headers=auth(member_token)).status_code == 200


def test_oversized_body_without_content_length(client: FlaskClient, auth: Auth, member_token: str) -> None:
    big = b'{"csp-report":{"a":"' + b"x" * (200 * 1024) + b'"}}'
    resp = client.post(
        URL,
        input_stream=io.BytesIO(big),
        headers=auth(member_token),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert resp.status_code == 413
