"""The bad-input catalogue: malformed tokens, conflicting token sources, odd paths, huge headers and
bodies, hostile JSON on /csp/reports, odd `{user}` values and every wrong method on every route.

Each answer is the documented status in the error envelope, nothing answers 5xx, and the server keeps
serving. The application-level cases run through the WSGI app on SQLite and PostgreSQL; the paths, the
HTTP-level cases (huge headers, malformed request lines, lying Content-Length) run against real
gunicorn workers, with the request bytes sent as they are.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from coderapi import logs
from coderapi.app import create_app, shutdown
from coderapi.config.settings import Settings
from coderapi.database import Store
from coderapi.database.users import User
from coderapi.httpapi.errors import BAD_REQUEST, METHOD_NOT_ALLOWED, REQUEST_TOO_LARGE, ROUTE_NOT_FOUND
from coderapi.httpmw.apikey import KEY_INVALID_DETAIL, NO_TOKEN_DETAIL, SECRET_INVALID_DETAIL, SIGNED_OUT_MESSAGE
from coderapi.httpmw.userparam import USER_NOT_FOUND_MESSAGE
from coderapi.routes.csp import INVALID_JSON_MESSAGE, MAX_REPORT_BYTES
from coderapi.workers import HEADERS_TOO_LARGE, URI_TOO_LONG
from tests.conftest import (
    LiveServer,
    MakeToken,
    MakeUser,
    MakeValues,
    assert_envelope,
    header_value,
    live_server,
    raw_http,
)

TOKEN_HEADER = "Coder-Session-Token"
CSP = "/api/v2/csp/reports"
TOKENCONFIG = "/api/v2/users/{user}/keys/tokens/tokenconfig"
BAD_FORMAT = "Invalid API key format: "


def wire(text: str) -> str:
    """`text` as a WSGI server hands its UTF-8 bytes to the app in a header: decoded as latin-1."""
    return text.encode("utf-8").decode("latin-1")


def check(resp: Any, status: int, message: str | None = None, detail: str | None = None) -> dict[str, Any]:
    """A Flask test response: `status`, in the envelope unless it is a success."""
    assert resp.status_code == status, (resp.status_code, resp.data[:300])
    if status < 400:
        return {}
    doc = assert_envelope(resp.status_code, resp.headers, resp.data, message)
    if detail is not None:
        assert doc.get("detail") == detail, doc
    return doc


# --- malformed tokens -----------------------------------------------------------------------------

ID = "a" * 10
SECRET = "b" * 22

MALFORMED_TOKENS = [
    pytest.param("", NO_TOKEN_DETAIL, id="empty"),
    pytest.param("   \t ", NO_TOKEN_DETAIL, id="only-whitespace"),
    pytest.param("x" * 64 * 1024, BAD_FORMAT + "incorrect amount of API key parts, expected 2 got 1", id="64KiB"),
    pytest.param("nodash", BAD_FORMAT + "incorrect amount of API key parts, expected 2 got 1", id="one-part"),
    pytest.param(f"{ID}-{SECRET}-x", BAD_FORMAT + "incorrect amount of API key parts, expected 2 got 3", id="three"),
    pytest.param("-----", BAD_FORMAT + "incorrect amount of API key parts, expected 2 got 6", id="only-dashes"),
    pytest.param("-", BAD_FORMAT + "invalid API key ID length, expected 10 got 0", id="empty-parts"),
    pytest.param(f"{ID}a-{SECRET}", BAD_FORMAT + "invalid API key ID length, expected 10 got 11", id="long-id"),
    pytest.param(f"{ID}-{SECRET[1:]}", BAD_FORMAT + "invalid API key secret length, expected 22 got 21", id="short"),
    # Lengths count UTF-8 bytes as sent, as Go does: "é" is two.
    pytest.param("é" * 10 + f"-{SECRET}", BAD_FORMAT + "invalid API key ID length, expected 10 got 20", id="utf8-id"),
    pytest.param("é" * 5 + f"-{SECRET}", KEY_INVALID_DETAIL, id="utf8-id-10-bytes"),
    pytest.param(f"{ID}-" + "é" * 11, KEY_INVALID_DETAIL, id="utf8-secret-22-bytes"),
    pytest.param("ab\u2028\u2028cd-" + SECRET, KEY_INVALID_DETAIL, id="line-separator-id"),
    pytest.param(f"{ID}-{SECRET}", KEY_INVALID_DETAIL, id="unknown-id"),
]


@pytest.mark.parametrize(("token", "detail"), MALFORMED_TOKENS)
def test_malformed_token_in_header(client: FlaskClient, token: str, detail: str) -> None:
    resp = client.get("/api/v2/deployment/ssh", headers={TOKEN_HEADER: wire(token)})
    check(resp, 401, SIGNED_OUT_MESSAGE, detail)
    assert "WWW-Authenticate" in resp.headers


@pytest.mark.parametrize(("token", "detail"), MALFORMED_TOKENS[2:])
def test_malformed_token_in_query(client: FlaskClient, token: str, detail: str) -> None:
    resp = client.get("/api/v2/deployment/ssh", query_string={"coder_session_token": token})
    check(resp, 401, SIGNED_OUT_MESSAGE, detail)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("a" * 9 + "\x00-" + SECRET, id="nul-in-id"),
        pytest.param(ID + "-" + "b" * 21 + "\x00", id="nul-in-secret"),
        pytest.param("\x00" * 10 + "-" + "\x00" * 22, id="all-nul"),
        pytest.param("a%00aaaaaa-" + SECRET[:20], id="percent-text"),
    ],
)
def test_nul_bytes_in_token(client: FlaskClient, token: str) -> None:
    # PostgreSQL refuses NUL in text: such an id must never reach it (it names no key anyway).
    check(client.get("/api/v2/deployment/ssh", query_string={"coder_session_token": token}), 401, SIGNED_OUT_MESSAGE)
    check(client.get("/api/v2/deployment/ssh", query_string={"access_token": token}), 401, SIGNED_OUT_MESSAGE)


def test_invalid_utf8_token_in_header(client: FlaskClient) -> None:
    # Ten undecodable bytes make a 10-byte id; it names no key, and it must not upset the database.
    token = (b"\xff" * 10 + b"-" + b"\xfe" * 22).decode("latin-1")
    check(
        client.get("/api/v2/deployment/ssh", headers={TOKEN_HEADER: token}), 401, SIGNED_OUT_MESSAGE, KEY_INVALID_DETAIL
    )


def test_wrong_secret_of_the_right_length(client: FlaskClient, member_token: str) -> None:
    key_id, secret = member_token.split("-")
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    resp = client.get("/api/v2/deployment/ssh", headers={TOKEN_HEADER: f"{key_id}-{wrong}"})
    check(resp, 401, SIGNED_OUT_MESSAGE, SECRET_INVALID_DETAIL)


@pytest.mark.parametrize(
    ("where", "template", "status"),
    [
        ("header", "  {t}\t ", 200),
        ("bearer", "Bearer    {t}   ", 200),
        ("bearer", "BEARER {t}", 200),
        ("access_token", "  {t} ", 200),
        # coder_session_token in the query is not trimmed (coderd).
        ("query", " {t}", 401),
        ("query", "{t}\n", 401),
    ],
)
def test_stray_whitespace(client: FlaskClient, member_token: str, where: str, template: str, status: int) -> None:
    value = template.format(t=member_token)
    kwargs: dict[str, Any] = {
        "header": {"headers": {TOKEN_HEADER: value}},
        "bearer": {"headers": {"Authorization": value}},
        "access_token": {"query_string": {"access_token": value}},
        "query": {"query_string": {"coder_session_token": value}},
    }[where]
    check(client.get("/api/v2/deployment/ssh", **kwargs), status, SIGNED_OUT_MESSAGE if status == 401 else None)


# --- conflicting token sources --------------------------------------------------------------------

BAD = "zzzzzzzzzz-" + "z" * 22


@pytest.mark.parametrize(
    ("sources", "status"),
    [
        # The first non-empty source is judged alone: cookie, query, header, bearer, access_token.
        ({"cookie": "{good}", "header": BAD}, 200),
        ({"cookie": BAD, "header": "{good}"}, 401),
        ({"cookie": "", "header": "{good}"}, 200),
        ({"query": BAD, "header": "{good}"}, 401),
        ({"query": "", "header": "{good}"}, 200),
        ({"header": "{good}", "bearer": BAD}, 200),
        ({"header": BAD, "bearer": "{good}"}, 401),
        ({"header": "   ", "bearer": "{good}"}, 200),
        ({"bearer": "{good}", "access_token": BAD}, 200),
        ({"bearer": BAD, "access_token": "{good}"}, 401),
        ({"basic": "{good}", "access_token": BAD}, 401),
        ({"basic": "{good}"}, 401),
        ({"cookie": "{good}", "query": BAD, "header": BAD, "bearer": BAD, "access_token": BAD}, 200),
        ({"cookie": BAD, "query": "{good}", "header": "{good}", "bearer": "{good}", "access_token": "{good}"}, 401),
    ],
)
def test_conflicting_sources(client: FlaskClient, member_token: str, sources: dict[str, str], status: int) -> None:
    values = {k: v.format(good=member_token) for k, v in sources.items()}
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    if "cookie" in values:
        client.set_cookie("coder_session_token", values["cookie"])
    if "query" in values:
        query["coder_session_token"] = values["query"]
    if "access_token" in values:
        query["access_token"] = values["access_token"]
    if "header" in values:
        headers[TOKEN_HEADER] = values["header"]
    if "bearer" in values:
        headers["Authorization"] = "Bearer " + values["bearer"]
    if "basic" in values:
        headers["Authorization"] = "Basic " + values["basic"]
    resp = client.get("/api/v2/deployment/ssh", headers=headers, query_string=query)
    check(resp, status, SIGNED_OUT_MESSAGE if status == 401 else None)


# --- hostile JSON on /csp/reports -----------------------------------------------------------------


@pytest.fixture
def csp_app(sqlite_store: Store, settings: Settings, make_values: MakeValues) -> Iterator[Flask]:
    """An app on SQLite with debug logging on (reports are logged field by field at debug level)."""
    values = make_values(["--verbose"])
    logs.configure_from_values(values)
    app = create_app(values, sqlite_store, settings)
    app.config["TESTING"] = True
    yield app
    shutdown(app)


@pytest.fixture
def csp_post(csp_app: Flask, sqlite_store: Store) -> Any:
    from coderapi import apikey

    user = sqlite_store.insert_user("reporter", "reporter@example.com", [])
    token = apikey.issue(sqlite_store, user.id, datetime.timedelta(days=1))
    client = csp_app.test_client()

    def post(data: bytes, content_type: str = "application/csp-report") -> Any:
        return client.post(CSP, data=data, headers={TOKEN_HEADER: token, "Content-Type": content_type})

    return post


def nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


HOSTILE_JSON_400 = [
    pytest.param(nested(10_001), "exceeded max depth", id="deep-arrays"),
    pytest.param(nested(30_000), "exceeded max depth", id="very-deep-arrays"),
    pytest.param(b'{"":' * 11_000 + b"{}" + b"}" * 11_000, "exceeded max depth", id="deep-objects"),
    pytest.param(b"[" * 60_000, "exceeded max depth", id="deep-unclosed"),
    pytest.param(b'{"csp-report":{"a":"\xff\xfe"}}', None, id="invalid-utf8"),
    pytest.param(b'{"csp-report":{"a":"\xed\xa0\x80"}}', None, id="utf8-encoded-surrogate"),
    pytest.param(b"\xef\xbb\xbf{}", "invalid character '\\ufeff' looking for beginning of value", id="bom"),
    pytest.param(b"", "EOF", id="empty"),
    pytest.param(b" \r\n\t ", "EOF", id="only-whitespace"),
    pytest.param(b'{"csp-report":{"a":"x\x00y"}}', "invalid character '\\x00' in string literal", id="nul-in-string"),
    pytest.param(b'{"csp-report":{"a":"\x1f"}}', "invalid character '\\x1f' in string literal", id="control"),
    pytest.param(b'{"csp-report":{"a":Infinity}}', "invalid character 'I' looking for beginning of value", id="inf"),
    pytest.param(b'{"csp-report":{"a":-Infinity}}', "invalid character 'I' in numeric literal", id="-inf"),
    pytest.param(b"[]", "json: cannot unmarshal array into Go value of type coderd.cspViolation", id="array"),
    pytest.param(b"true", "json: cannot unmarshal bool into Go value of type coderd.cspViolation", id="bool"),
    pytest.param(b"1e999", "json: cannot unmarshal number into Go value of type coderd.cspViolation", id="number"),
    pytest.param(
        b'{"csp-report":1}',
        "json: cannot unmarshal number into Go struct field cspViolation.csp-report of type map[string]interface {}",
        id="report-number",
    ),
    pytest.param(
        b'{"csp-report":[{}]}',
        "json: cannot unmarshal array into Go struct field cspViolation.csp-report of type map[string]interface {}",
        id="report-array",
    ),
    pytest.param(
        b'{"csp-report":{"a":1e999}}',
        "json: cannot unmarshal number 1e999 into Go struct field cspViolation.csp-report of type float64",
        id="float-overflow",
    ),
    pytest.param(
        b'{"csp-report":{"a":[{"b":-2e308}]}}',
        "json: cannot unmarshal number -2e308 into Go struct field cspViolation.csp-report of type float64",
        id="nested-float-overflow",
    ),
    pytest.param(
        b'{"csp-report":{"a":' + b"9" * 5000 + b"}}",
        "json: cannot unmarshal number " + "9" * 5000 + " into Go struct field cspViolation.csp-report of type float64",
        id="5000-digit-integer",
    ),
    pytest.param(b'{"csp-report":{"a":01}}', "invalid character '1' after object key:value pair", id="leading-zero"),
    pytest.param(b'{"csp-report":{"a":-NaN}}', "invalid character 'N' in numeric literal", id="-nan"),
    pytest.param(b'{"csp-report":{"a":1.}}', "invalid character '}' after decimal point in numeric literal", id="1."),
    pytest.param(b'{"csp-report":{"a":1e+}}', "invalid character '}' in exponent of numeric literal", id="1e+"),
    pytest.param(
        b'{"csp-report":{"a":"\\u12G4"}}', "invalid character 'G' in \\u hexadecimal character escape", id="bad-u"
    ),
    pytest.param(b'{"csp-report":{"a":"\\x41"}}', "invalid character 'x' in string escape code", id="bad-escape"),
    pytest.param(
        b"{'csp-report':{}}", "invalid character '\\'' looking for beginning of object key string", id="quote"
    ),
]


@pytest.mark.parametrize(("data", "detail"), HOSTILE_JSON_400)
def test_hostile_json_is_400(csp_post: Any, data: bytes, detail: str | None) -> None:
    resp = csp_post(data)
    doc = check(resp, 400, INVALID_JSON_MESSAGE)
    if detail is not None:
        assert doc["detail"] == detail
    # Still serving: a good report right after.
    assert csp_post(b'{"csp-report":{"blocked-uri":"x"}}').status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"csp-report":{"a":1,"a":{"b":2},"a":[3]}}', id="duplicate-keys"),
        pytest.param(b'{"csp-report":{"a":1},"csp-report":{"b":2}}', id="duplicate-report"),
        pytest.param(b'{"csp-report":{"a":1.7976931348623157e308,"b":-0,"c":1e-400,"d":5e-324}}', id="extreme-floats"),
        pytest.param(b'{"csp-report":{"a":' + b"9" * 300 + b"}}", id="300-digit-integer"),
        pytest.param(b'{"csp-report":{"a":"\\ud800\\udfff\\ud800"}}', id="lone-surrogate-escapes"),
        pytest.param(b'{"csp-report":{"\\u0000":"\\u0000","<script>":"&amp;\\u2028"}}', id="escaped-controls"),
        pytest.param(b'{"csp-report":{"a":"' + "é🙂".encode() * 1000 + b'"}}', id="unicode"),
        pytest.param(b'{"csp-report":{' + b",".join(b'"k%d":%d' % (i, i) for i in range(5000)) + b"}}", id="5000-keys"),
        pytest.param(nested(900), id="nesting-below-limit"),
        pytest.param(b'{"csp-report":{}}\x00 ]]] {"csp-report": garbage after the first value', id="trailing-garbage"),
        pytest.param(b'{"Csp-Report":{"token":"aaaaaaaaaa-bbbbbbbbbbbbbbbbbbbbbb"}}', id="case-insensitive-key"),
    ],
)
def test_odd_but_valid_json_is_accepted(csp_post: Any, data: bytes) -> None:
    if data.startswith(b"[[[["):
        # Nested arrays decode fine but are not an object: Go's type error, not a depth error.
        doc = check(csp_post(data), 400, INVALID_JSON_MESSAGE)
        assert doc["detail"] == "json: cannot unmarshal array into Go value of type coderd.cspViolation"
        return
    resp = csp_post(data)
    assert (resp.status_code, resp.data) == (200, b'"ok"\n')


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", ""],
)
def test_report_content_type_is_not_checked(csp_post: Any, content_type: str) -> None:
    assert csp_post(b'{"csp-report":{"a":1}}', content_type).status_code == 200


def test_report_body_size_limit(csp_post: Any) -> None:
    filler = MAX_REPORT_BYTES - len(b'{"csp-report":{"a":""}}')
    exact = b'{"csp-report":{"a":"' + b"x" * filler + b'"}}'
    assert len(exact) == MAX_REPORT_BYTES
    assert csp_post(exact).status_code == 200
    check(csp_post(exact + b" "), 413, REQUEST_TOO_LARGE)
    check(csp_post(b"[" * (10 * 1024 * 1024)), 413, REQUEST_TOO_LARGE)


# --- odd {user} values ----------------------------------------------------------------------------


@pytest.fixture
def people(make_user: MakeUser, make_token: MakeToken) -> dict[str, tuple[User, str]]:
    owner = make_user("owner", ["owner"])
    member = make_user("member")
    return {"owner": (owner, make_token(owner)), "member": (member, make_token(member))}


def odd_users(owner: User) -> list[tuple[str, int, int]]:
    """(`{user}` value, status for the owner, status for a member)."""
    not_found = (400, 400)
    return [
        ("me", 200, 200),
        ("owner", 200, 400),
        ("OWNER", 200, 400),  # usernames compare case-insensitively
        ("ME", *not_found),
        (str(owner.id), 200, 400),
        (str(owner.id).upper(), 200, 400),
        ("{" + str(owner.id) + "}", 200, 400),
        ("urn:uuid:" + str(owner.id), 200, 400),
        (owner.id.hex, 200, 400),
        (str(uuid.uuid4()), *not_found),
        ("00000000-0000-0000-0000-000000000000", *not_found),
        ("ffffffff-ffff-ffff-ffff-ffffffffffffx", *not_found),
        ("..", *not_found),
        (".", *not_found),
        ("own_r", *not_found),  # no LIKE wildcards
        ("%", *not_found),
        ("' OR '1'='1", *not_found),
        ("owner'--", *not_found),
        (" owner", *not_found),
        ("ünïcødé", *not_found),
        ("用户", *not_found),
        ("🙂" * 50, *not_found),
        ("\x00", *not_found),
        ("owner\x00", *not_found),
        ("\ufffd", *not_found),
        ("a" * 10_000, *not_found),
        ("<img src=x onerror=alert(1)>", *not_found),
    ]


def test_odd_user_values(client: FlaskClient, people: dict[str, tuple[User, str]]) -> None:
    owner, owner_token = people["owner"]
    _member, member_token = people["member"]
    for raw, owner_status, member_status in odd_users(owner):
        for token, status in ((owner_token, owner_status), (member_token, member_status)):
            resp = client.get(TOKENCONFIG.format(user=raw), headers={TOKEN_HEADER: token})
            assert resp.status_code == status, (raw[:40], resp.status_code, resp.data[:200])
            if status == 400:
                doc = check(resp, 400, USER_NOT_FOUND_MESSAGE)
                assert doc["detail"].startswith('queried user="')
            else:
                assert set(json.loads(resp.data)) == {"max_token_lifetime"}


def test_odd_user_values_without_a_token(client: FlaskClient) -> None:
    for raw in ("me", "..", "\x00", "a" * 10_000, str(uuid.uuid4())):
        check(client.get(TOKENCONFIG.format(user=raw)), 401, SIGNED_OUT_MESSAGE, NO_TOKEN_DETAIL)


# --- every wrong method on every route ------------------------------------------------------------

ROUTES = [
    # (path, its one method, needs a token)
    ("/api/v2", "GET", False),
    ("/api/v2/", "GET", False),
    ("/api/v2/buildinfo", "GET", False),
    ("/api/v2/updatecheck", "GET", False),
    (CSP, "POST", True),
    ("/api/v2/deployment/config", "GET", True),
    ("/api/v2/deployment/stats", "GET", True),
    ("/api/v2/deployment/ssh", "GET", True),
    ("/api/v2/experiments", "GET", True),
    ("/api/v2/experiments/", "GET", True),
    ("/api/v2/experiments/available", "GET", True),
    (TOKENCONFIG.format(user="me"), "GET", True),
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "FOO"]


def test_every_route_is_in_the_catalogue(app: Flask) -> None:
    rules = {(r.rule, m) for r in app.url_map.iter_rules() for m in (r.methods or set()) - {"HEAD", "OPTIONS"}}
    api = {(rule, m) for rule, m in rules if rule.startswith("/api/v2")}
    listed = {(p.replace("/users/me/", "/users/<user>/"), m) for p, m, _ in ROUTES}
    assert api == listed


@pytest.mark.wire_format("reference")
@pytest.mark.parametrize(("path", "allowed", "needs_token"), ROUTES)
def test_every_wrong_method(client: FlaskClient, owner_token: str, path: str, allowed: str, needs_token: bool) -> None:
    for method in METHODS:
        if method == allowed:
            continue
        for token in (owner_token, None):
            headers = {TOKEN_HEADER: token} if token else {}
            resp = client.open(path, method=method, headers=headers)
            if needs_token and token is None:
                expected, message = 401, SIGNED_OUT_MESSAGE
            else:
                expected, message = 405, METHOD_NOT_ALLOWED
            assert resp.status_code == expected, (method, path, token is not None, resp.status_code, resp.data)
            if method == "HEAD":
                assert resp.data == b""
            else:
                assert_envelope(resp.status_code, resp.headers, resp.data, message)
            if expected == 405:
                assert resp.headers["Allow"] == allowed


# --- against real gunicorn: paths, headers, bodies and request lines as raw bytes -----------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("bad-input"), workers=2) as server:
        yield server


def still_serving(live: LiveServer) -> None:
    status, _h, body = live.request("GET", "/api/v2/buildinfo")
    assert status == 200 and json.loads(body)["version"]
    status, _h, _b = live.request("GET", "/api/v2/deployment/ssh", {TOKEN_HEADER: live.member_token})
    assert status == 200
    assert live.process.alive()


ODD_PATHS = [
    # (path as sent, status without a token, status with one, message when an error)
    ("/api/v2//buildinfo", 200, 200, None),
    ("///api///v2///buildinfo", 200, 200, None),
    ("/api/v2/buildinfo/", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/buildinfo//", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/./buildinfo", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/x/../buildinfo", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/deployment/../buildinfo", 401, 404, None),
    ("/api/v2/deployment/..%2Fconfig", 401, 404, None),
    ("/api/v2/%62uildinfo", 200, 200, None),
    ("/api/v2/buildinfo%2F", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/buildinfo%00", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/buildinfo%", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/buildinfo%zz", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/buildinfo;x=1", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/buildinfo?a=%00&b=%ff&%zz", 200, 200, None),
    ("/api/v2/%E2%80%A8", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/%ff%fe", 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2/" + "a" * 8000, 404, 404, ROUTE_NOT_FOUND),
    ("/api/v2", 200, 200, None),
    ("/api//v2/", 200, 200, None),
    ("/api/v2/experiments/", 401, 200, None),
    ("/api/v2/experiments//", 401, 200, None),
    ("/api/v2/deployment/config/", 401, 404, None),
    ("/api/v2/deployment/", 401, 404, None),
    ("/api/v2/deployment", 401, 404, None),
    ("/api/v2/deployment/nope", 401, 404, None),
    ("/api/v2/users/me/keys/tokens/tokenconfig/", 401, 404, None),
    ("/api/v2/users//keys/tokens/tokenconfig", 401, 404, None),
    ("/api/v2/users/%2F/keys/tokens/tokenconfig", 401, 404, None),
    ("/api/v2/users/%00/keys/tokens/tokenconfig", 401, 400, USER_NOT_FOUND_MESSAGE),
    ("/api/v2/users/%ff/keys/tokens/tokenconfig", 401, 400, USER_NOT_FOUND_MESSAGE),
    ("/api/v2/users/..%2F../keys/tokens/tokenconfig", 401, 404, None),
    ("/api/v2/users/me%20/keys/tokens/tokenconfig", 401, 400, USER_NOT_FOUND_MESSAGE),
    ("/api/v3/buildinfo", 404, 404, ROUTE_NOT_FOUND),
    ("/", 404, 404, ROUTE_NOT_FOUND),
    ("/API/V2/BUILDINFO", 404, 404, ROUTE_NOT_FOUND),
    ("/healthz/", 404, 404, ROUTE_NOT_FOUND),
]


@pytest.mark.slow
def test_odd_paths(live: LiveServer) -> None:
    for path, anonymous, signed_in, message in ODD_PATHS:
        for token, expected in ((None, anonymous), (live.member_token, signed_in)):
            status, headers, body = live.request("GET", path, {TOKEN_HEADER: token} if token else {})
            assert status == expected, (path[:60], token is not None, status, body[:200])
            if status >= 400:
                doc = assert_envelope(status, headers, body)
                if status == 401:
                    assert doc["message"] == SIGNED_OUT_MESSAGE
                elif message is not None:
                    assert doc["message"] == message
    still_serving(live)


def status_of(answer: bytes) -> int:
    """The status code of the first response in `answer` (raw bytes from the server)."""
    assert answer.startswith(b"HTTP/1."), answer[:200]
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1]


RAW_REQUESTS = [
    # HTTP-level garbage is refused by gunicorn before the app runs (as Go's net/http does for coderd),
    # by our workers in the error envelope: a 4xx and a closed connection, and the worker lives on.
    pytest.param(b"GARBAGE\r\n\r\n", 400, id="no-method-line"),
    pytest.param(b"GET /api/v2/buildinfo HTTP/9.9\r\nHost: x\r\n\r\n", 400, id="bad-version"),
    pytest.param(b"GET /api/v2/buildinfo FTP/1.1\r\nHost: x\r\n\r\n", 400, id="bad-protocol"),
    pytest.param(b"G\x00T /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\n\r\n", 400, id="nul-in-method"),
    pytest.param(b"get /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\n\r\n", 400, id="lowercase-method"),
    pytest.param(b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, id="nul-in-header"),
    pytest.param(b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, id="header-no-colon"),
    pytest.param(b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, id="space-in-name"),
    pytest.param(b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\n folded: v\r\n\r\n", 400, id="obs-fold"),
    pytest.param(b"GET /api/v2/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, id="9000-byte-line"),
    pytest.param(
        b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, id="9000-byte-header"
    ),
    pytest.param(
        b"GET /api/v2/deployment/ssh HTTP/1.1\r\nHost: x\r\nCoder-Session-Token: " + b"t" * 65536 + b"\r\n\r\n",
        431,
        id="64KiB-token",
    ),
    pytest.param(
        b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
        431,
        id="150-headers",
    ),
    pytest.param(
        b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        id="two-content-lengths",
    ),
    pytest.param(
        b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, id="negative-length"
    ),
    pytest.param(b"GET /api/v2/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400, id="raw-non-ascii-path"),
    pytest.param(
        b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
        b"\r\n0\r\n\r\n",
        400,
        id="chunked-and-length",
    ),
]


def parse_answer(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status_of(answer), headers, body


REFUSAL_MESSAGES = {400: BAD_REQUEST, 414: URI_TOO_LONG, 431: HEADERS_TOO_LARGE}


@pytest.mark.slow
@pytest.mark.parametrize(("data", "status"), RAW_REQUESTS)
def test_malformed_http(live: LiveServer, data: bytes, status: int) -> None:
    answer = raw_http(live.port, data)
    got, headers, body = parse_answer(answer)
    assert got == status, answer[:300]
    assert_envelope(got, headers, body, REFUSAL_MESSAGES[status])
    assert headers["Connection"] == "close"
    still_serving(live)


@pytest.mark.slow
def test_malformed_http_on_threaded_workers(tmp_path: pathlib.Path) -> None:
    # The gthread worker (CODERAPI_THREADS > 1) refuses in the envelope too.
    with live_server(tmp_path, env={"CODERAPI_THREADS": "4"}, workers=1) as server:
        for param in RAW_REQUESTS:
            data, status = param.values
            assert isinstance(data, bytes) and isinstance(status, int)
            got, headers, body = parse_answer(raw_http(server.port, data))
            assert got == status
            assert_envelope(got, headers, body, REFUSAL_MESSAGES[status])
        still_serving(server)


@pytest.mark.slow
def test_app_level_raw_requests(live: LiveServer) -> None:
    token = live.member_token.encode()
    # A path with raw non-ASCII bytes, a method gunicorn accepts but no route has, a huge query.
    cases = [
        # Malformed chunked framing in a body the app reads: the read error, as coderd's decoder reports
        # it (it was a 500). Without a token the body is never read.
        (
            b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nCoder-Session-Token: "
            + token
            + b"\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            400,
            INVALID_JSON_MESSAGE,
        ),
        (
            b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nCoder-Session-Token: "
            + token
            + b"\r\n\r\n5\r\nhelloXX0\r\n\r\n",
            400,
            INVALID_JSON_MESSAGE,
        ),
        (
            b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nhello\r\n0\r\n\r\n",
            401,
            SIGNED_OUT_MESSAGE,
        ),
        (b"FOO /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, METHOD_NOT_ALLOWED),
        (b"GET /api/v2/buildinfo HTTP/1.0\r\n\r\n", 200, None),
        (
            b"GET /api/v2/buildinfo?" + b"q=" + b"%00" * 2500 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            200,
            None,
        ),
        (
            b"GET /api/v2/deployment/ssh HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCoder-Session-Token: \xc3\xa9"
            + b"\xc3\xa9" * 9
            + b"-"
            + b"b" * 22
            + b"\r\n\r\n",
            401,
            BAD_FORMAT + "invalid API key ID length, expected 10 got 20",
        ),
        (
            b"GET /api/v2/deployment/ssh HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCoder-Session-Token: "
            + b"\xff" * 10
            + b"-"
            + b"\xfe" * 22
            + b"\r\n\r\n",
            401,
            KEY_INVALID_DETAIL,
        ),
        (
            b"GET /api/v2/deployment/ssh HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCoder-Session-Token: "
            + token
            + b"\r\nCoder-Session-Token: "
            + BAD.encode()
            + b"\r\n\r\n",
            401,
            None,
        ),
        (
            b"GET /api/v2/deployment/ssh HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: coder_session_token="
            + token
            + b"; coder_session_token="
            + BAD.encode()
            + b"\r\n\r\n",
            200,
            None,
        ),
    ]
    for data, status, text in cases:
        answer = raw_http(live.port, data)
        assert status_of(answer) == status, (data[:80], answer[:300])
        if status >= 400:
            _status, headers, body = parse_answer(answer)
            doc = assert_envelope(status, headers, body)
            if text is not None:
                assert text in (doc["message"], doc.get("detail"))
    still_serving(live)


@pytest.mark.slow
def test_huge_and_lying_bodies(live: LiveServer) -> None:
    headers = {TOKEN_HEADER: live.member_token}
    # 1 MiB announced with Content-Length: refused before it is read.
    status, h, body = live.request("POST", CSP, headers, b"{" * (1024 * 1024))
    assert_envelope(status, h, body, REQUEST_TOO_LARGE)
    assert status == 413
    # 1 MiB chunked (no Content-Length): refused after the first 64 KiB.
    chunk = b"[" * 65536
    data = (
        b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
        + b"Coder-Session-Token: "
        + live.member_token.encode()
        + b"\r\n\r\n"
        + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 16
        + b"0\r\n\r\n"
    )
    answer = raw_http(live.port, data)
    assert status_of(answer) == 413
    assert json.loads(body_of(answer))["message"] == REQUEST_TOO_LARGE
    # A body on a GET is ignored.
    status, _h, _b = live.request("GET", "/api/v2/buildinfo", {}, b"x" * 100_000)
    assert status == 200
    # Content-Length larger than what is sent, then the client goes away: nothing breaks.
    import socket

    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nCoder-Session-Token: "
            + live.member_token.encode()
            + b'\r\n\r\n{"csp-report":'
        )
    # A request that stops halfway through its headers, then closes.
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\nX-Partial: ")
    # Connect and close without a byte.
    socket.create_connection(("127.0.0.1", live.port), timeout=5).close()
    still_serving(live)
    for _ in range(20):
        assert live.request("GET", "/api/v2/buildinfo")[0] == 200


@pytest.mark.slow
def test_every_wrong_method_on_gunicorn(live: LiveServer) -> None:
    for path, allowed, needs_token in ROUTES:
        for method in ("PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "POST" if allowed == "GET" else "GET"):
            status, headers, body = live.request(method, path, {TOKEN_HEADER: live.owner_token})
            assert status == 405, (method, path, status)
            assert header_value(headers, "Allow") == allowed
            if method != "HEAD":
                assert_envelope(status, headers, body, METHOD_NOT_ALLOWED)
            if needs_token:
                status, _h, _b = live.request(method, path)
                assert status == 401
    still_serving(live)


def test_catalogue_helpers_fail_on_a_5xx() -> None:
    # The envelope check refuses a success, a non-JSON body and a traceback: the catalogue can fail.
    ok = {"Content-Type": "application/json; charset=utf-8"}
    with pytest.raises(AssertionError):
        assert_envelope(200, ok, b'{"message":"x"}\n')
    with pytest.raises(AssertionError):
        assert_envelope(500, {"Content-Type": "text/html"}, b"<html>")
    with pytest.raises(AssertionError):
        assert_envelope(500, ok, b'{"message":"Traceback (most recent call last):"}\n')


# --- hostile forwarded-for headers from a trusted proxy ---------------------------------------------


@pytest.mark.parametrize(
    ("forwarded", "stored"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7, 10.0.0.1", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        # Zones are not IPs (Go's net.ParseIP); a long one overflowed the stored address (a 500).
        ("fe80::1%eth0", "127.0.0.1"),
        ("ff02::1%" + "x" * 300, "127.0.0.1"),
        ("999.1.1.1", "127.0.0.1"),
        ("1.2.3.4%eth0", "127.0.0.1"),
        ("x" * 4000, "127.0.0.1"),
        ("", "127.0.0.1"),
        (", 203.0.113.7", "127.0.0.1"),
        ("\u00e9\u00e9", "127.0.0.1"),
    ],
)
def test_hostile_forwarded_for(
    make_app: Any, store: Store, make_user: MakeUser, make_token: MakeToken, forwarded: str, stored: str
) -> None:
    from sqlalchemy import text

    app = make_app(argv=["--proxy-trusted-origins", "127.0.0.1/32", "--proxy-trusted-headers", "X-Forwarded-For"])
    user = make_user("behind-proxy")
    token = make_token(user)
    key_id = token.split("-")[0]
    # An hour since last use: this request records the client address.
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE api_keys SET last_used = :at WHERE id = :id"),
            {"at": datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2), "id": key_id},
        )
    client = app.test_client()
    resp = client.get("/api/v2/deployment/ssh", headers={TOKEN_HEADER: token, "X-Forwarded-For": wire(forwarded)})
    assert resp.status_code == 200, resp.data
    key = store.get_api_key_by_id(key_id)
    assert key is not None and key.ip_address == stored


# --- upgrade headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Connection": "upgrade", "Upgrade": "websocket"},
        {"Connection": "keep-alive, Upgrade", "Upgrade": "WebSocket", "Sec-WebSocket-Version": "13"},
        {"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAAQCAAAAAAIAAAAA"},
    ],
)
def test_upgrade_headers_are_routed_like_any_request(
    client: FlaskClient, owner_token: str, headers: dict[str, str]
) -> None:
    # werkzeug answered a websocket upgrade to a plain route with 400; chi routes it as usual.
    for path, method, needs_token in ROUTES:
        sent = {**headers, TOKEN_HEADER: owner_token} if needs_token else dict(headers)
        body = b'{"csp-report":{"a":1}}' if method == "POST" else None
        resp = client.open(path, method=method, headers=sent, data=body)
        if path == "/api/v2/deployment/stats" and resp.status_code == 400:
            # Before the first computation is cached.
            assert_envelope(400, resp.headers, resp.data, "Deployment stats are still processing!")
            continue
        assert resp.status_code == 200, (path, resp.status_code, resp.data)
    resp = client.get("/api/v2/nope", headers=headers)
    assert_envelope(resp.status_code, resp.headers, resp.data, ROUTE_NOT_FOUND)
    resp = client.put("/api/v2/buildinfo", headers=headers)
    assert_envelope(resp.status_code, resp.headers, resp.data, METHOD_NOT_ALLOWED)


@pytest.mark.parametrize("path", ["/healthz", "/swagger", "/swagger/", "/swagger/doc.json", "/swagger/index.html"])
def test_every_wrong_method_outside_the_api(client: FlaskClient, path: str) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO"):
        resp = client.open(path, method=method)
        assert resp.status_code == 405, (method, path, resp.status_code)
        assert resp.headers["Allow"] == "GET"
        assert_envelope(resp.status_code, resp.headers, resp.data, METHOD_NOT_ALLOWED)
    resp = client.head(path)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET"
