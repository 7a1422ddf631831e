"""`coderapi tokens …`."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from coderapi import apikey
from coderapi.cli.tokens import DurationError, parse_duration
from coderapi.goformat import format_duration
from tests.test_cli_users import cli_env, db_store, run

__all__ = ["cli_env"]
TOKEN_RE = re.compile(r"[0-9A-Za-z]{10}-[0-9A-Za-z]{22}")


def _user(env: dict[str, str], name: str = "alice", roles: str = "") -> None:
    assert (
        run(env, "users", "create", "--username", name, "--email", f"{name}@example.com", "--roles", roles).exit_code
        == 0
    )


def test_create_prints_only_the_token(cli_env: dict[str, str]) -> None:
    _user(cli_env)
    result = run(cli_env, "tokens", "create", "--user", "alice", "--name", "ci")
    assert result.exit_code == 0, result.output
    token = result.stdout.rstrip("\n")
    assert TOKEN_RE.fullmatch(token)
    assert result.stdout == token + "\n"
    store = db_store(cli_env)
    try:
        key = store.get_api_key_by_id(token[:10])
        assert key is not None
        assert key.token_name == "ci"
        assert apikey.validate_hash(key.hashed_secret, token[11:])
        # Default lifetime: default_token_lifetime (168h).
        assert key.lifetime_seconds == 168 * 3600
    finally:
        store.close()


@pytest.mark.parametrize(("lifetime", "seconds"), [("24h", 86400), ("1h30m", 5400), ("30d", 30 * 86400)])
def test_create_with_lifetime(cli_env: dict[str, str], lifetime: str, seconds: int) -> None:
    _user(cli_env)
    token = run(cli_env, "tokens", "create", "--user", "alice", "--lifetime", lifetime).stdout.strip()
    store = db_store(cli_env)
    try:
        key = store.get_api_key_by_id(token[:10])
        assert key is not None
        assert key.lifetime_seconds == seconds
        assert abs((key.expires_at - key.created_at) - dt.timedelta(seconds=seconds)) < dt.timedelta(seconds=1)
    finally:
        store.close()


def test_owner_capped_by_admin_lifetime(cli_env: dict[str, str]) -> None:
    _user(cli_env, "root", "owner")
    result = run(cli_env, "tokens", "create", "--user", "root", "--lifetime", "200h")
    assert result.exit_code == 1
    assert "lifetime must be less than 168h0m0s" in result.stderr
    assert run(cli_env, "tokens", "create", "--user", "root", "--lifetime", "168h").exit_code == 0


def test_member_capped_by_max_token_lifetime(cli_env: dict[str, str]) -> None:
    _user(cli_env)
    env = cli_env | {"CODER_MAX_TOKEN_LIFETIME": "48h"}
    result = run(env, "tokens", "create", "--user", "alice", "--lifetime", "49h")
    assert result.exit_code == 1
    assert "lifetime must be less than 48h0m0s" in result.stderr
    # The default (168h) is capped to the maximum.
    token = run(env, "tokens", "create", "--user", "alice").stdout.strip()
    store = db_store(cli_env)
    try:
        key = store.get_api_key_by_id(token[:10])
        assert key is not None and key.lifetime_seconds == 48 * 3600
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tokens", "create", "--user", "ghost"), "no user named 'ghost'"),
        (("tokens", "create", "--user", "alice", "--lifetime", "soon"), "invalid duration"),
        (("tokens", "create", "--user", "alice", "--lifetime", "-1h"), "lifetime must be positive"),
        (("tokens", "create", "--user", "alice", "--name", "bad name"), "invalid token name"),
        (("tokens", "delete", "--user", "alice", "nope"), "no token"),
        (("tokens", "list", "--user", "ghost"), "no user named"),
    ],
)
def test_errors(cli_env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    _user(cli_env)
    result = run(cli_env, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_duplicate_name(cli_env: dict[str, str]) -> None:
    _user(cli_env)
    assert run(cli_env, "tokens", "create", "--user", "alice", "--name", "ci").exit_code == 0
    result = run(cli_env, "tokens", "create", "--user", "alice", "--name", "ci")
    assert result.exit_code == 1
    assert "already exists" in result.stderr


def test_list_and_delete_by_id_and_name(cli_env: dict[str, str]) -> None:
    _user(cli_env)
    first = run(cli_env, "tokens", "create", "--user", "alice", "--name", "one").stdout.strip()
    second = run(cli_env, "tokens", "create", "--user", "alice", "--name", "two").stdout.strip()
    listed = json.loads(run(cli_env, "tokens", "list", "--user", "alice", "-o", "json").stdout)
    assert sorted(k["token_name"] for k in listed) == ["one", "two"]
    text = run(cli_env, "tokens", "list", "--user", "alice").stdout
    assert first[:10] in text and second[:10] in text
    assert first[11:] not in text and second[11:] not in text
    assert run(cli_env, "tokens", "delete", "--user", "alice", "one").exit_code == 0
    assert run(cli_env, "tokens", "delete", "--user", "alice", second[:10]).exit_code == 0
    assert json.loads(run(cli_env, "tokens", "list", "--user", "alice", "-o", "json").stdout) == []


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400 * 10**9
    assert parse_duration("1.5h") == 5400 * 10**9
    assert parse_duration("250ms") == 250 * 10**6
    assert parse_duration("0") == 0
    for bad in ("", "h", "1", "1x", "1h 2m"):
        with pytest.raises(DurationError):
            parse_duration(bad)
    assert format_duration(168 * 3600 * 10**9) == "168h0m0s"
    assert format_duration(876600 * 3600 * 10**9) == "876600h0m0s"
    assert format_duration(90 * 10**9) == "1m30s"
    assert format_duration(0) == "0s"
