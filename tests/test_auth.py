"""The Coder-Session-Token check: sources, every failure row, side effects, WWW-Authenticate."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from werkzeug.test import TestResponse

from coderapi import apikey
from coderapi.database import Store
from coderapi.database.tables import api_keys
from coderapi.database.users import User
from coderapi.goformat import go_time_string
from tests.conftest import MakeApp, MakeToken, MakeUser, StartServer, raw_http

PROBE = "/api/v2/users/me/keys/tokens/tokenconfig"
SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
INTERNAL = "An internal error occurred. Please try again or contact the system administrator."
EXPIRED_CHALLENGE = (
    'Bearer realm="coder", error="invalid_token", error_description="The access token has expired", '
    'resource_metadata="http://localhost/.well-known/oauth-protected-resource"'
)
INVALID_CHALLENGE = EXPIRED_CHALLENGE.replace("The access token has expired", "The access token is invalid")

Auth = Callable[[str], dict[str, str]]


def body(resp: TestResponse) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resp.data)
    return doc


def assert_refused(resp: TestResponse, message: str, detail: str | None, challenge: str = EXPIRED_CHALLENGE) -> None:
    assert resp.status_code == 401, resp.data
    expected = {"message": message} | ({"detail": detail} if detail else {})
    assert body(resp) == expected
    assert resp.headers["WWW-Authenticate"] == challenge
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


def test_no_token(client: FlaskClient) -> None:
    resp = client.get(PROBE)
    assert_refused(resp, SIGNED_OUT, 'Cookie "coder_session_token" or query parameter must be provided.')
    assert resp.data == (
        b'{"message":"You are signed out or your session has expired. Please sign in again to continue.",'
        b'"detail":"Cookie \\"coder_session_token\\" or query parameter must be provided."}\n'
    )


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        ("abc", "incorrect amount of API key parts, expected 2 got 1"),
        ("a-b-c", "incorrect amount of API key parts, expected 2 got 3"),
        ("abcdefghi-" + "x" * 22, "invalid API key ID length, expected 10 got 9"),
        ("abcdefghij-" + "x" * 5, "invalid API key secret length, expected 22 got 5"),
    ],
)
def test_bad_format(client: FlaskClient, auth: Auth, token: str, detail: str) -> None:
    assert_refused(client.get(PROBE, headers=auth(token)), SIGNED_OUT, "Invalid API key format: " + detail)


def test_unknown_id(client: FlaskClient, auth: Auth) -> None:
    assert_refused(client.get(PROBE, headers=auth("abcdefghij-" + "x" * 22)), SIGNED_OUT, "API key is invalid.")


def test_wrong_secret(client: FlaskClient, auth: Auth, member_token: str) -> None:
    key_id, secret = apikey.split(member_token)
    wrong = key_id + "-" + secret[:-1] + ("a" if secret[-1] != "a" else "b")
    assert_refused(client.get(PROBE, headers=auth(wrong)), SIGNED_OUT, "API key secret is invalid.")


def test_expired(client: FlaskClient, auth: Auth, member: User, make_token: MakeToken) -> None:
    at = dt.datetime(2026, 1, 19, 8, 50, 57, 123456, tzinfo=dt.UTC)
    token = make_token(member, expires_at=at)
    resp = client.get(PROBE, headers=auth(token))
    assert_refused(resp, SIGNED_OUT, 'API key expired at "2026-01-19 08:50:57.123456 +0000 UTC".')


@pytest.mark.parametrize("status", ["suspended", "dormant"])
def test_inactive_user(
    client: FlaskClient, auth: Auth, make_user: MakeUser, make_token: MakeToken, status: str
) -> None:
    user = make_user("sleepy", status=status)
    resp = client.get(PROBE, headers=auth(make_token(user)))
    message = f'User is not active (status = "{status}"). Contact an admin to reactivate your account.'
    assert_refused(resp, message, None, INVALID_CHALLENGE)


def test_deleted_user(client: FlaskClient, auth: Auth, store: Store, member: User, member_token: str) -> None:
    assert client.get(PROBE, headers=auth(member_token)).status_code == 200
    store.delete_user(member.id)
    assert_refused(client.get(PROBE, headers=auth(member_token)), SIGNED_OUT, "API key is invalid.")


def test_deleted_user_with_a_leftover_key(
    client: FlaskClient, auth: Auth, store: Store, member: User, member_token: str
) -> None:
    from coderapi.database.tables import users

    with store.engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == member.id).values(deleted=True))
    assert_refused(client.get(PROBE, headers=auth(member_token)), SIGNED_OUT, "API key is invalid.")


def test_database_error_fetching_key(
    client: FlaskClient, auth: Auth, store: Store, member_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_key_id: str) -> None:
        raise OperationalError("SELECT …", {}, Exception("connection refused"))

    monkeypatch.setattr(store, "get_api_key_with_user", broken)
    resp = client.get(PROBE, headers=auth(member_token))
    assert_refused(resp, INTERNAL, "Internal error fetching API key by id. connection refused", INVALID_CHALLENGE)
    assert b"Traceback" not in resp.data


def test_database_error_updating_key(
    client: FlaskClient,
    auth: Auth,
    store: Store,
    member: User,
    make_token: MakeToken,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = make_token(member)
    _age_key(store, token, hours=2)

    def broken(*_a: object, **_k: object) -> None:
        raise OperationalError("UPDATE …", {}, Exception("disk full"))

    monkeypatch.setattr(store, "update_api_key_usage", broken)
    resp = client.get(PROBE, headers=auth(token))
    assert resp.status_code == 500
    assert body(resp) == {"message": INTERNAL, "detail": "API key couldn't update: disk full."}
    assert "WWW-Authenticate" not in resp.headers


# --- the five sources -----------------------------------------------------------------------------


SOURCES = ("cookie", "query", "header", "bearer", "access_token")


def send(client: FlaskClient, source: str, token: str, path: str = PROBE) -> TestResponse:
    """GET `path` with the token in one of the five places coderd reads it from."""
    if source == "cookie":
        client.set_cookie("coder_session_token", token)
        try:
            return client.get(path)
        finally:
            client.delete_cookie("coder_session_token")
    kwargs: dict[str, dict[str, str]] = {
        "query": {"query_string": {"coder_session_token": token}},
        "header": {"headers": {"Coder-Session-Token": f"  {token} "}},
        "bearer": {"headers": {"Authorization": f"bEaReR {token} "}},
        "access_token": {"query_string": {"access_token": f" {token}"}},
    }[source]
    return client.get(path, **kwargs)


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_authenticates(client: FlaskClient, member_token: str, source: str) -> None:
    resp = send(client, source, member_token)
    assert resp.status_code == 200, resp.data
    assert body(resp) == {"max_token_lifetime": 3155760000000000000}


def test_other_authorization_schemes_are_ignored(client: FlaskClient, member_token: str) -> None:
    for value in (f"Basic {member_token}", "Bearer", f"Token {member_token}"):
        resp = client.get(PROBE, headers={"Authorization": value})
        assert body(resp)["detail"] == 'Cookie "coder_session_token" or query parameter must be provided.'


def test_empty_cookie_is_skipped(client: FlaskClient, member_token: str) -> None:
    client.set_cookie("coder_session_token", "")
    resp = client.get(PROBE, headers={"Coder-Session-Token": member_token})
    assert resp.status_code == 200


def test_bad_cookie_wins_over_good_header(client: FlaskClient, member_token: str) -> None:
    client.set_cookie("coder_session_token", "stale")
    resp = client.get(PROBE, headers={"Coder-Session-Token": member_token})
    assert_refused(resp, SIGNED_OUT, "Invalid API key format: incorrect amount of API key parts, expected 2 got 1")


def test_source_order(client: FlaskClient, member_token: str) -> None:
    bad = "zzzzzzzzzz-" + "z" * 22
    # query coder_session_token beats the header, header beats bearer, bearer beats access_token.
    resp = client.get(PROBE, query_string={"coder_session_token": bad}, headers={"Coder-Session-Token": member_token})
    assert resp.status_code == 401
    resp = client.get(PROBE, headers={"Coder-Session-Token": bad, "Authorization": f"Bearer {member_token}"})
    assert resp.status_code == 401
    resp = client.get(PROBE, headers={"Authorization": f"Bearer {bad}"}, query_string={"access_token": member_token})
    assert resp.status_code == 401
    resp = client.get(PROBE, headers={"Authorization": f"Bearer {member_token}"}, query_string={"access_token": bad})
    assert resp.status_code == 200


def test_cli_made_token_through_every_source(make_app: MakeApp, store: Store, settings: object) -> None:
    """A token from `coderapi tokens create` (run against this store's database) authenticates."""
    from click.testing import CliRunner

    from coderapi.cli import main

    env = {"CODERAPI_DATA_DIR": str(settings.data_dir)}  # type: ignore[attr-defined]
    if store.dialect == "postgresql":
        env["CODER_PG_CONNECTION_URL"] = store.url
    else:
        env["CODERAPI_DATA_DIR"] = str(_sqlite_dir(store))
    runner = CliRunner()
    created = runner.invoke(main, ["users", "create", "--username", "cli-user", "--email", "cli@example.com"], env=env)
    assert created.exit_code == 0, created.output
    made = runner.invoke(main, ["tokens", "create", "--user", "cli-user"], env=env)
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert made.stdout == token + "\n"
    client = make_app().test_client()
    for source in SOURCES:
        resp = send(client, source, token)
        assert resp.status_code == 200, (source, resp.data)


def _sqlite_dir(store: Store) -> str:
    path = store.url.removeprefix("sqlite:///")
    assert path.endswith("/coderapi.db")
    return path.removesuffix("/coderapi.db")


# --- refused on the very next request -------------------------------------------------------------


def test_deleted_token_refused_next_request(client: FlaskClient, auth: Auth, store: Store, member_token: str) -> None:
    assert client.get(PROBE, headers=auth(member_token)).status_code == 200
    assert store.delete_api_key(member_token[:10])
    assert_refused(client.get(PROBE, headers=auth(member_token)), SIGNED_OUT, "API key is invalid.")


def test_suspended_user_refused_next_request(
    client: FlaskClient, auth: Auth, store: Store, member: User, member_token: str
) -> None:
    assert client.get(PROBE, headers=auth(member_token)).status_code == 200
    store.update_user_status(member.id, "suspended")
    resp = client.get(PROBE, headers=auth(member_token))
    assert resp.status_code == 401
    assert body(resp)["message"].startswith('User is not active (status = "suspended")')
    store.update_user_status(member.id, "active")
    assert client.get(PROBE, headers=auth(member_token)).status_code == 200


def test_expiring_key_refused_next_request(
    client: FlaskClient, auth: Auth, store: Store, member: User, make_token: MakeToken
) -> None:
    token = make_token(member, dt.timedelta(hours=1))
    assert client.get(PROBE, headers=auth(token)).status_code == 200
    past = dt.datetime.now(dt.UTC) - dt.timedelta(microseconds=1)
    with store.engine.begin() as conn:
        conn.execute(update(api_keys).where(api_keys.c.id == token[:10]).values(expires_at=past))
    resp = client.get(PROBE, headers=auth(token))
    assert_refused(resp, SIGNED_OUT, f'API key expired at "{go_time_string(past)}".')


def test_two_nodes_see_revocation_at_once(make_app: MakeApp, auth: Auth, store: Store, member_token: str) -> None:
    node_a, node_b = make_app().test_client(), make_app().test_client()
    assert node_a.get(PROBE, headers=auth(member_token)).status_code == 200
    assert node_b.get(PROBE, headers=auth(member_token)).status_code == 200
    store.delete_api_key(member_token[:10])
    assert node_a.get(PROBE, headers=auth(member_token)).status_code == 401
    assert node_b.get(PROBE, headers=auth(member_token)).status_code == 401


# --- side effects ---------------------------------------------------------------------------------


def _age_key(store: Store, token: str, *, hours: float) -> None:
    """Pretend the key was created and last used `hours` ago."""
    key = store.get_api_key_by_id(token[:10])
    assert key is not None
    shift = dt.timedelta(hours=hours)
    with store.engine.begin() as conn:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key.id)
            .values(last_used=key.last_used - shift, expires_at=key.expires_at - shift, ip_address="0.0.0.0")
        )


def test_last_used_written_at_most_hourly(
    client: FlaskClient, auth: Auth, store: Store, member: User, make_token: MakeToken
) -> None:
    token = make_token(member)
    before = store.get_api_key_by_id(token[:10])
    assert before is not None
    client.get(PROBE, headers=auth(token), environ_base={"REMOTE_ADDR": "10.1.2.3"})
    same = store.get_api_key_by_id(token[:10])
    assert same == before  # used within the hour: nothing written
    _age_key(store, token, hours=1.01)
    client.get(PROBE, headers=auth(token), environ_base={"REMOTE_ADDR": "10.1.2.3"})
    after = store.get_api_key_by_id(token[:10])
    assert after is not None
    assert after.ip_address == "10.1.2.3"
    assert dt.datetime.now(dt.UTC) - after.last_used < dt.timedelta(minutes=1)
    user = store.get_user_by_id(member.id)
    assert user is not None and user.last_seen_at is not None
    assert dt.datetime.now(dt.UTC) - user.last_seen_at < dt.timedelta(minutes=1)


def test_sliding_expiry(client: FlaskClient, auth: Auth, store: Store, member: User, make_token: MakeToken) -> None:
    token = make_token(member, dt.timedelta(hours=24))
    _age_key(store, token, hours=2)
    client.get(PROBE, headers=auth(token))
    key = store.get_api_key_by_id(token[:10])
    assert key is not None
    remaining = key.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < remaining <= dt.timedelta(hours=24)


def test_expiry_refresh_disabled(
    make_app: MakeApp, auth: Auth, store: Store, member: User, make_token: MakeToken
) -> None:
    client = make_app(argv=["--disable-session-expiry-refresh"]).test_client()
    token = make_token(member, dt.timedelta(hours=24))
    _age_key(store, token, hours=2)
    before = store.get_api_key_by_id(token[:10])
    assert client.get(PROBE, headers=auth(token)).status_code == 200
    after = store.get_api_key_by_id(token[:10])
    assert before is not None and after is not None
    assert after.expires_at == before.expires_at
    assert after.last_used > before.last_used  # last_used still recorded


# --- WWW-Authenticate base, unmatched paths, no token in logs -------------------------------------


def test_challenge_uses_access_url(make_app: MakeApp) -> None:
    client = make_app(env={"CODER_ACCESS_URL": "https://coder.example.com"}).test_client()
    resp = client.get(PROBE)
    assert resp.headers["WWW-Authenticate"].endswith(
        'resource_metadata="https://coder.example.com/.well-known/oauth-protected-resource"'
    )


@pytest.mark.wire_format("reference")
@pytest.mark.parametrize(
    ("method", "path", "with_token"),
    [
        ("GET", "/api/v2/deployment/nope", 404),
        ("POST", "/api/v2/deployment/config", 405),
        ("GET", "/api/v2/users/me/nope", 404),
        ("GET", "/api/v2/csp/reports", 405),
        ("HEAD", PROBE, 405),
    ],
)
def test_unmatched_paths_under_authenticated_prefixes(
    client: FlaskClient, auth: Auth, member_token: str, method: str, path: str, with_token: int
) -> None:
    resp = client.open(path, method=method)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == EXPIRED_CHALLENGE
    assert client.open(path, method=method, headers=auth(member_token)).status_code == with_token


def test_public_routes_need_no_token(client: FlaskClient) -> None:
    assert client.get("/api/v2/buildinfo").status_code == 200
    assert client.get("/api/v2/usersx").status_code == 404


def test_no_log_line_contains_a_token(
    client: FlaskClient, member_token: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_secret = member_token[:11] + "x" * 22
    for token in (member_token, wrong_secret):
        for source in SOURCES:
            send(client, source, token)
        client.post(
            "/api/v2/csp/reports",
            headers={"Coder-Session-Token": token},
            data=json.dumps({"csp-report": {"document-uri": f"https://x/?coder_session_token={token}"}}),
        )
    text = "\n".join(r.getMessage() for r in caplog.records) + capsys.readouterr().err
    for token in (member_token, wrong_secret):
        assert token not in text
        assert token.split("-")[1] not in text


def test_app_without_auth_hook_fails_loudly(app: Flask) -> None:
    from coderapi.httpmw.apikey import current_api_key, current_user

    with app.test_request_context("/"):
        with pytest.raises(RuntimeError):
            current_user()
        with pytest.raises(RuntimeError):
            current_api_key()


@pytest.mark.wire_format("reference")
def test_every_authenticated_route_refuses_without_a_token(app: Flask) -> None:
    """Walks the route table: every view under an authenticated prefix answers 401 without a token."""
    from coderapi.routes import AUTHENTICATED_PREFIXES

    client = app.test_client()
    walked: set[str] = set()
    for rule in app.url_map.iter_rules():
        if not AUTHENTICATED_PREFIXES.match(rule.rule):
            continue
        path = rule.rule.replace("<user>", "me")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            resp = client.open(path, method=method)
            assert resp.status_code == 401, (method, path)
            assert body(resp)["message"] == SIGNED_OUT
            walked.add(path.split("/")[3])
    assert walked == {"csp", "deployment", "experiments", "users"}


def test_real_database_error_gets_coderd_body(client: FlaskClient, auth: Auth, store: Store, member_token: str) -> None:
    """The table the lookup reads is gone: a real driver error, answered as coderd does, no traceback."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE api_keys RENAME TO api_keys_away")
    try:
        resp = client.get(PROBE, headers=auth(member_token))
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE api_keys_away RENAME TO api_keys")
    assert resp.status_code == 401
    got = body(resp)
    assert got["message"] == INTERNAL
    assert got["detail"].startswith("Internal error fetching API key by id. ")
    assert "api_keys" in got["detail"]
    assert "\n" not in got["detail"] and "SELECT" not in got["detail"]
    assert member_token[11:] not in resp.data.decode()


@pytest.mark.parametrize(
    ("host", "metadata"),
    [
        (b"127.0.0.1:99999", b'"http://127.0.0.1:99999/.well-known/oauth-protected-resource"'),
        (b"a b", b'"http://a b/.well-known/oauth-protected-resource"'),
        (b'evil"x', b'"http://evil\\"x/.well-known/oauth-protected-resource"'),
        ("é.example".encode(), '"http://é.example/.well-known/oauth-protected-resource"'.encode()),
        (b"\xff.example", b'"http://\\xff.example/.well-known/oauth-protected-resource"'),
        (b"back\\slash", b'"http://back\\\\slash/.well-known/oauth-protected-resource"'),
    ],
)
def test_challenge_quotes_the_host_as_sent(client: FlaskClient, host: bytes, metadata: bytes) -> None:
    # coderd: the scheme plus r.Host, `%q`-quoted; WSGI hands the header over as latin-1 text.
    resp = client.get(PROBE, environ_overrides={"HTTP_HOST": host.decode("latin-1")})
    challenge = resp.headers["WWW-Authenticate"].encode("latin-1")
    assert challenge.endswith(b"resource_metadata=" + metadata), challenge


@pytest.mark.slow
def test_challenge_quotes_the_host_through_gunicorn(start_server: StartServer) -> None:
    server = start_server(workers=1)
    for host, metadata in (
        (b"127.0.0.1:99999", b'"http://127.0.0.1:99999/.well-known/oauth-protected-resource"'),
        (b"a b", b'"http://a b/.well-known/oauth-protected-resource"'),
        (b'evil"x', b'"http://evil\\"x/.well-known/oauth-protected-resource"'),
        ("é.example".encode(), '"http://é.example/.well-known/oauth-protected-resource"'.encode()),
    ):
        answer = raw_http(
            server.port, b"GET " + PROBE.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
        )
        head = answer.partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 401 "), answer[:300]
        challenge = [line for line in head.split(b"\r\n") if line.lower().startswith(b"www-authenticate:")]
        assert len(challenge) == 1 and challenge[0].endswith(b"resource_metadata=" + metadata), head
