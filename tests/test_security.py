"""Security checks: secrets never leave the server, token secrets are never stored in plain text, the
secret comparison is constant-time, members cannot read what they must not, and no state changes
through a cookie without the token check.

The secrets test runs a real `coderapi server` on PostgreSQL at debug level with every one of the 13
secret options set to its own sentinel (half by flag, half by environment; the PostgreSQL URL carries
one as its password, which trust auth never asks for), calls every endpoint as owner, member and
anonymous, through every token source, and then searches every response, the server's output, its
JSON and human log files and every row of every table for the sentinels and for the token secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, table, text
from sqlalchemy import inspect as sa_inspect

from coderapi import apikey, testing
from coderapi.config.options import OPTIONS
from coderapi.database.engine import sqlalchemy_url
from coderapi.database.users import User
from coderapi.httpapi.errors import FORBIDDEN, FORBIDDEN_DETAIL
from coderapi.httpmw.apikey import SECRET_INVALID_DETAIL, SIGNED_OUT_MESSAGE
from coderapi.httpmw.userparam import USER_NOT_FOUND_MESSAGE
from tests import services
from tests.conftest import (
    LiveServer,
    MakeToken,
    MakeUser,
    assert_envelope,
    live_server,
    raw_http,
    seed_users_with_cli,
)

TOKEN_HEADER = "Coder-Session-Token"
SECRET_OPTIONS = [o for o in OPTIONS if o.secret]
REPORT = b'{"csp-report":{"document-uri":"https://coder.example.com/","blocked-uri":"inline"}}'


def test_thirteen_secret_options() -> None:
    assert len(SECRET_OPTIONS) == 13
    assert {o.env for o in SECRET_OPTIONS} >= {"CODER_PG_CONNECTION_URL", "CODER_OIDC_CLIENT_SECRET"}


# --- secrets never leave the server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def secret_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str], Any]]:
    services.require_postgres()
    directory = tmp_path_factory.mktemp("secrets")
    sentinels = {o.env: f"sentinel{n:02d}x{uuid.uuid4().hex[:12]}" for n, o in enumerate(SECRET_OPTIONS)}
    db = testing.unique_name("coderapi_secrets")
    url = testing.create_pg_database(db)
    base, _, name = url.rpartition("/")
    scheme, _, host = base.partition("://")
    user, _, hostport = host.partition("@")
    sentinels["CODER_PG_CONNECTION_URL"] = f"{scheme}://{user}:{sentinels['CODER_PG_CONNECTION_URL']}@{hostport}/{name}"
    env: dict[str, str] = {"CODER_VERBOSE": "true"}
    flags: list[str] = ["--swagger-enable", "--log-json", str(directory / "log.json")]
    flags += ["--log-human", str(directory / "log.txt")]
    for n, option in enumerate(SECRET_OPTIONS):
        if option.env == "CODER_PG_CONNECTION_URL" or n % 2 == 0:
            env[option.env] = sentinels[option.env]
        else:
            flags += [f"--{option.flag}", sentinels[option.env]]
    try:
        with live_server(directory, *flags, env=env, workers=2, seed=seed_users_with_cli) as server:
            yield server, sentinels, directory
    finally:
        testing.drop_pg_database(db)


def needles(sentinels: dict[str, str]) -> list[str]:
    """What must appear nowhere: each sentinel (the URL's password part for the PostgreSQL URL)."""
    values = []
    for env, value in sentinels.items():
        if env == "CODER_PG_CONNECTION_URL":
            value = value.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        values.append(value)
    return values


def call_every_endpoint(server: LiveServer) -> list[bytes]:
    """Every route (and a few non-routes) as owner, member and anonymous, through every token source;
    the raw answers."""
    owner, member = server.owner_token, server.member_token
    member_id = server.users["member"][0]
    paths = [
        "/api/v2",
        "/api/v2/",
        "/api/v2/buildinfo",
        "/api/v2/updatecheck",
        "/api/v2/deployment/config",
        "/api/v2/deployment/stats",
        "/api/v2/deployment/ssh",
        "/api/v2/experiments",
        "/api/v2/experiments/",
        "/api/v2/experiments/available",
        "/api/v2/users/me/keys/tokens/tokenconfig",
        f"/api/v2/users/{member_id}/keys/tokens/tokenconfig",
        "/api/v2/users/member/keys/tokens/tokenconfig",
        "/api/v2/users/nobody/keys/tokens/tokenconfig",
        "/api/v2/nope",
        "/healthz",
        "/swagger",
        "/swagger/",
        "/swagger/doc.json",
        "/swagger/index.html",
    ]
    answers: list[bytes] = []

    def send(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        answers.append(raw_http(server.port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body))

    for path in paths:
        for token in (owner, member, None):
            send("GET", path, {TOKEN_HEADER: token} if token else {})
        send("GET", path + ("&" if "?" in path else "?") + f"coder_session_token={owner}", {})
        send("GET", path + f"?access_token={owner}", {})
        send("GET", path, {"Cookie": f"coder_session_token={owner}"})
        send("GET", path, {"Authorization": f"Bearer {owner}"})
        send("DELETE", path, {TOKEN_HEADER: owner})
    for token in (owner, member, None):
        send("POST", "/api/v2/csp/reports", {TOKEN_HEADER: token} if token else {}, REPORT)
    # A report that names a token in its URL, and bad JSON (logged at warn with the error).
    send("POST", "/api/v2/csp/reports", {TOKEN_HEADER: member}, REPORT.replace(b"inline", owner.encode()))
    send("POST", "/api/v2/csp/reports", {TOKEN_HEADER: member}, b'{"csp-report": [' + owner.encode() + b"]}")
    return answers


@pytest.mark.slow
@pytest.mark.postgres
def test_no_secret_anywhere(secret_server: tuple[LiveServer, dict[str, str], pathlib.Path]) -> None:
    server, sentinels, directory = secret_server
    # The configuration really holds them: the values are loaded, they are just never shown.
    status, _h, body = server.request("GET", "/api/v2/deployment/config", {TOKEN_HEADER: server.owner_token})
    assert status == 200
    config = json.loads(body)
    shown = {o["env"]: o for o in config["options"] if o.get("env") in sentinels}
    assert set(shown) == set(sentinels)
    assert all("value" not in o and o["value_source"] in ("flag", "env") for o in shown.values()), shown

    answers = call_every_endpoint(server)
    assert len(answers) > 150
    statuses = {int(a.split(b" ", 2)[1]) for a in answers}
    assert statuses <= {200, 301, 302, 307, 308, 400, 401, 403, 404, 405}, statuses
    assert max(statuses) < 500

    secrets_ = [s.encode() for s in needles(sentinels)]
    for answer in answers:
        for raw in secrets_:
            assert raw not in answer, (raw, answer[:300])

    # Everything the server wrote: its own output and both log files, at debug level.
    output = server.process.output()
    json_log = (directory / "log.json").read_text()
    human_log = (directory / "log.txt").read_text()
    assert '"level":"DEBUG"' in json_log and "[debug]" in human_log, "the server did not log at debug level"
    assert "CSP violation reported" in json_log
    tokens = [server.owner_token, server.member_token]
    token_secrets = [t.split("-")[1] for t in tokens]
    for where, text_ in (("output", output), ("json log", json_log), ("human log", human_log)):
        assert text_.strip(), where
        for needle in needles(sentinels):
            assert needle not in text_, (where, needle)
        for secret in token_secrets:
            assert secret not in text_, (where, "a token secret was logged")
    for line in json_log.splitlines():
        if line.strip():
            json.loads(line)


@pytest.mark.slow
@pytest.mark.postgres
def test_database_holds_no_secret_and_no_plain_token(secret_server: tuple[LiveServer, dict[str, str], Any]) -> None:
    server, sentinels, _directory = secret_server
    engine = create_engine(sqlalchemy_url(sentinels["CODER_PG_CONNECTION_URL"]))
    tokens = {name: token for name, (_id, token) in server.users.items()}
    try:
        with engine.connect() as conn:
            names = sa_inspect(conn).get_table_names()
            assert {"users", "api_keys", "site_configs"} <= set(names)
            dump: list[str] = []
            for name in names:
                for row in conn.execute(select(text("*")).select_from(table(name))):
                    for value in row:
                        if isinstance(value, bytes | memoryview):
                            raw = bytes(value)
                            dump += [raw.hex(), raw.decode("latin-1")]
                        else:
                            dump.append(str(value))
            keys = {
                row.id: bytes(row.hashed_secret) for row in conn.execute(text("SELECT id, hashed_secret FROM api_keys"))
            }
    finally:
        engine.dispose()
    blob = "\n".join(dump)
    for needle in needles(sentinels):
        assert needle not in blob
    for name, token in tokens.items():
        key_id, secret = token.split("-")
        assert secret not in blob, f"{name}'s token secret is stored in plain text"
        assert token not in blob
        # What is stored is the SHA-256 of the secret, as coderd stores it.
        assert keys[key_id] == hashlib.sha256(secret.encode()).digest()


# --- constant-time comparison ---------------------------------------------------------------------


class NoEquality(bytes):
    """A stored hash that fails the test when anything compares it with `==` or `!=`."""

    def __eq__(self, other: object) -> bool:
        raise AssertionError("the stored hash was compared with ==")

    def __ne__(self, other: object) -> bool:
        raise AssertionError("the stored hash was compared with !=")

    __hash__ = bytes.__hash__


@pytest.fixture
def compare_digest_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every `hmac.compare_digest(a, b)` made during the test, as (a, b)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def test_validate_hash_uses_compare_digest(compare_digest_calls: list[tuple[bytes, bytes]]) -> None:
    plain = apikey.hash_secret("s" * 22)
    stored = NoEquality(plain)
    assert apikey.validate_hash(stored, "s" * 22)
    assert not apikey.validate_hash(stored, "t" * 22)
    assert compare_digest_calls == [(plain, plain), (apikey.hash_secret("t" * 22), plain)]


def test_validate_hash_answers_what_compare_digest_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # A compare_digest that answers the opposite: the check must follow it, so nothing else decides.
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: not real(a, b))
    stored = NoEquality(apikey.hash_secret("s" * 22))
    assert not apikey.validate_hash(stored, "s" * 22)
    assert apikey.validate_hash(stored, "t" * 22)


def test_request_path_compares_with_compare_digest(
    client: FlaskClient, member_token: str, compare_digest_calls: list[tuple[bytes, bytes]]
) -> None:
    key_id, secret = member_token.split("-")
    assert client.get("/api/v2/deployment/ssh", headers={TOKEN_HEADER: member_token}).status_code == 200
    # A wrong secret of the same length, differing only in its last character: refused.
    wrong = secret[:-1] + ("x" if secret[-1] != "x" else "y")
    resp = client.get("/api/v2/deployment/ssh", headers={TOKEN_HEADER: f"{key_id}-{wrong}"})
    doc = assert_envelope(resp.status_code, resp.headers, resp.data, SIGNED_OUT_MESSAGE)
    assert (resp.status_code, doc["detail"]) == (401, SECRET_INVALID_DETAIL)
    assert [a for a, _b in compare_digest_calls] == [apikey.hash_secret(secret), apikey.hash_secret(wrong)]


# --- what a member cannot read ----------------------------------------------------------------------


def test_member_cannot_read_config_stats_or_others_token_config(
    client: FlaskClient, make_user: MakeUser, make_token: MakeToken, owner: User, member_token: str
) -> None:
    headers = {TOKEN_HEADER: member_token}
    for path in ("/api/v2/deployment/config", "/api/v2/deployment/stats"):
        resp = client.get(path, headers=headers)
        doc = assert_envelope(resp.status_code, resp.headers, resp.data, FORBIDDEN)
        assert (resp.status_code, doc["detail"]) == (403, FORBIDDEN_DETAIL)
        assert "WWW-Authenticate" not in resp.headers
    other = make_user("other")
    for target in (owner, other):
        for raw in (str(target.id), target.username, target.username.upper()):
            resp = client.get(f"/api/v2/users/{raw}/keys/tokens/tokenconfig", headers=headers)
            doc = assert_envelope(resp.status_code, resp.headers, resp.data, USER_NOT_FOUND_MESSAGE)
            assert resp.status_code == 400 and b"max_token_lifetime" not in resp.data, doc
    # Their own is fine; the rate-limit bypass is the owner's only.
    assert client.get("/api/v2/users/me/keys/tokens/tokenconfig", headers=headers).status_code == 200
    resp = client.get("/api/v2/deployment/ssh", headers={**headers, "X-Coder-Bypass-Ratelimit": "true"})
    assert resp.status_code == 428


def test_auditor_reads_config_but_not_through_a_member_token(
    client: FlaskClient, auditor_token: str, member_token: str
) -> None:
    assert client.get("/api/v2/deployment/config", headers={TOKEN_HEADER: auditor_token}).status_code == 200
    assert client.get("/api/v2/deployment/config", headers={TOKEN_HEADER: member_token}).status_code == 403


# --- no state change through a cookie alone ---------------------------------------------------------


def test_the_only_state_changing_route_is_csp_reports(app: Flask) -> None:
    changing = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or ())
        if method not in ("GET", "HEAD", "OPTIONS")
    }
    assert changing == {("/api/v2/csp/reports", "POST")}


@pytest.mark.wire_format("reference")
@pytest.mark.parametrize(
    "cookie",
    [
        "stale",
        "aaaaaaaaaa-bbbbbbbbbbbbbbbbbbbbbb",
        "",
        "{member}x",
        "{member_id}-AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_csp_report_with_a_bad_cookie_is_refused(client: FlaskClient, member_token: str, cookie: str) -> None:
    key_id = member_token.split("-")[0]
    value = cookie.format(member=member_token, member_id=key_id)
    if value:
        client.set_cookie("coder_session_token", value)
    resp = client.post("/api/v2/csp/reports", data=REPORT, headers={"Content-Type": "application/csp-report"})
    assert_envelope(resp.status_code, resp.headers, resp.data, SIGNED_OUT_MESSAGE)
    assert resp.status_code == 401
    # A browser's cookie that holds a real token passes the same check.
    client.set_cookie("coder_session_token", member_token)
    assert client.post("/api/v2/csp/reports", data=REPORT).status_code == 200


@pytest.mark.wire_format("reference")
def test_bad_cookie_is_not_rescued_by_a_good_header(client: FlaskClient, member_token: str) -> None:
    # The cookie is read first and judged alone: a forged or stale cookie cannot borrow a header.
    client.set_cookie("coder_session_token", "aaaaaaaaaa-bbbbbbbbbbbbbbbbbbbbbb")
    resp = client.post("/api/v2/csp/reports", data=REPORT, headers={TOKEN_HEADER: member_token})
    assert resp.status_code == 401
