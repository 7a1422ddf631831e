"""API keys: generating, splitting and hashing `<id>-<secret>` tokens (coderd `apikey` package).

The id (10 characters) is the database primary key; only the SHA-256 of the secret (22 characters) is
stored, and presented secrets are compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import string
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coderapi import rbac
from coderapi.database.apikeys import LOGIN_TYPE_TOKEN
from coderapi.database.users import now

if TYPE_CHECKING:
    from coderapi.config import DeploymentValues
    from coderapi.database import Store

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
ID_LENGTH = 10
SECRET_LENGTH = 22

# Anything shaped like a token, for scrubbing text before it is logged.
_TOKEN_SHAPE = re.compile(r"[0-9A-Za-z]{10}-[0-9A-Za-z]{22}")
REDACTED = "[REDACTED]"


class APIKeyFormatError(ValueError):
    """The token is not `<10 characters>-<22 characters>`; the text is coderd's."""


@dataclass(frozen=True)
class GeneratedKey:
    id: str
    secret: str
    hashed_secret: bytes

    @property
    def token(self) -> str:
        return f"{self.id}-{self.secret}"


def random_string(length: int) -> str:
    """`length` characters from 0-9A-Za-z, unbiased, from the OS's CSPRNG (coderd's cryptorand.String)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def generate() -> GeneratedKey:
    key_id = random_string(ID_LENGTH)
    secret = random_string(SECRET_LENGTH)
    return GeneratedKey(key_id, secret, hash_secret(secret))


def hash_secret(secret: str) -> bytes:
    """The raw 32-byte SHA-256 of the secret, as coderd stores it in `hashed_secret`."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


def validate_hash(hashed: bytes, secret: str) -> bool:
    """Whether `secret` hashes to `hashed`, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret), hashed if type(hashed) is bytes else bytes(hashed))


def split(token: str) -> tuple[str, str]:
    """`(id, secret)` from a token. Raises APIKeyFormatError with coderd's text; only lengths are
    checked, in bytes, as Go does."""
    parts = token.split("-")
    if len(parts) != 2:
        raise APIKeyFormatError(f"incorrect amount of API key parts, expected 2 got {len(parts)}")
    key_id, secret = parts
    if token.isascii():  # the usual case: one byte per character
        id_len, secret_len = len(key_id), len(secret)
    else:
        id_len = len(key_id.encode("utf-8", "surrogateescape"))
        secret_len = len(secret.encode("utf-8", "surrogateescape"))
    if id_len != ID_LENGTH:
        raise APIKeyFormatError(f"invalid API key ID length, expected {ID_LENGTH} got {id_len}")
    if secret_len != SECRET_LENGTH:
        raise APIKeyFormatError(f"invalid API key secret length, expected {SECRET_LENGTH} got {secret_len}")
    return key_id, secret


def redact(text: str) -> str:
    """`text` with everything shaped like a session token replaced, so it can be logged."""
    return _TOKEN_SHAPE.sub(REDACTED, text)


def issue(
    store: Store,
    user_id: uuid.UUID,
    lifetime: dt.timedelta,
    *,
    token_name: str = "",
    login_type: str = LOGIN_TYPE_TOKEN,
    expires_at: dt.datetime | None = None,
) -> str:
    """Create a key for the user and return the token (`<id>-<secret>`), which is shown once and never
    stored: the database keeps only the secret's hash. The name defaults to the key id."""
    key = generate()
    at = now()
    store.insert_api_key(
        key.id,
        key.hashed_secret,
        user_id,
        lifetime_seconds=int(lifetime.total_seconds()),
        expires_at=expires_at if expires_at is not None else at + lifetime,
        login_type=login_type,
        token_name=token_name or key.id.lower(),
        created_at=at,
    )
    return key.token


def max_lifetime_ns(values: DeploymentValues, roles: tuple[str, ...]) -> int:
    """coderd's getMaxTokenLifetime, in nanoseconds: the admin cap when the user is an owner, else the
    general one."""
    lifetimes = values.effective.session_lifetime
    return lifetimes.max_admin_token_lifetime if rbac.is_owner(roles) else lifetimes.max_token_lifetime


def default_lifetime_ns(values: DeploymentValues, roles: tuple[str, ...]) -> int:
    """The lifetime of a token created without one: the deployment default, never beyond the cap."""
    return min(values.effective.session_lifetime.default_token_lifetime, max_lifetime_ns(values, roles))
