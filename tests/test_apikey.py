"""Tokens: generation, splitting, hashing and redaction (coderapi.apikey)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest

from coderapi import apikey
from coderapi.database import Store
from tests.conftest import MakeUser

TOKEN_RE = re.compile(r"[0-9A-Za-z]{10}-[0-9A-Za-z]{22}")


def test_generate_shape_and_hash() -> None:
    key = apikey.generate()
    assert TOKEN_RE.fullmatch(key.token)
    assert key.hashed_secret == hashlib.sha256(key.secret.encode()).digest()
    assert len(key.hashed_secret) == 32


def test_generate_is_random_and_uses_whole_alphabet() -> None:
    tokens = {apikey.generate().token for _ in range(300)}
    assert len(tokens) == 300
    seen = set("".join(tokens).replace("-", ""))
    # 9600 draws from 62 symbols: every symbol shows up.
    assert seen == set(apikey.ALPHABET)


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("abc", "incorrect amount of API key parts, expected 2 got 1"),
        ("a-b-c", "incorrect amount of API key parts, expected 2 got 3"),
        ("-", "invalid API key ID length, expected 10 got 0"),
        ("abcdefghi-" + "x" * 22, "invalid API key ID length, expected 10 got 9"),
        ("abcdefghij-" + "x" * 21, "invalid API key secret length, expected 22 got 21"),
        ("abcdefghij-" + "x" * 23, "invalid API key secret length, expected 22 got 23"),
    ],
)
def test_split_errors(token: str, error: str) -> None:
    with pytest.raises(apikey.APIKeyFormatError) as exc:
        apikey.split(token)
    assert str(exc.value) == error


def test_split_counts_bytes() -> None:
    with pytest.raises(apikey.APIKeyFormatError, match="expected 10 got 11"):
        apikey.split("abcdefghi\u00e9-" + "x" * 22)


def test_split_checks_only_lengths() -> None:
    assert apikey.split("!!!!!!!!!!-" + "?" * 22) == ("!" * 10, "?" * 22)


def test_validate_hash() -> None:
    key = apikey.generate()
    assert apikey.validate_hash(key.hashed_secret, key.secret)
    assert not apikey.validate_hash(key.hashed_secret, key.secret[:-1] + ("A" if key.secret[-1] != "A" else "B"))


def test_redact() -> None:
    token = apikey.generate().token
    text = f"https://x/?coder_session_token={token}&a=1"
    assert token not in apikey.redact(text)
    assert apikey.redact("nothing here") == "nothing here"


def test_issue_stores_only_the_hash(store: Store, make_user: MakeUser) -> None:
    user = make_user("alice")
    token = apikey.issue(store, user.id, dt.timedelta(hours=2), token_name="ci")
    key_id, secret = apikey.split(token)
    key = store.get_api_key_by_id(key_id)
    assert key is not None
    assert key.hashed_secret == hashlib.sha256(secret.encode()).digest()
    assert key.token_name == "ci"
    assert key.lifetime_seconds == 7200
    assert key.scopes == ("coder:all",)
    assert key.login_type == "token"
    assert dt.timedelta(hours=1, minutes=59) < key.expires_at - key.created_at <= dt.timedelta(hours=2)
    # Nowhere in the database is the secret in plain text.
    with store.engine.connect() as conn:
        dump = repr([tuple(r) for r in conn.exec_driver_sql("SELECT * FROM api_keys").all()])
    assert secret not in dump
    assert token not in dump
