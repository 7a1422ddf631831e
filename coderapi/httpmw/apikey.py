"""The `Coder-Session-Token` check (coderd `httpmw/apikey.go`, `ExtractAPIKey`).

`identify()` finds and validates the request's token once per request, without side effects, so the
rate limiter can key on the user before the check runs (coderd's later `PrecheckAPIKey`).
`require_api_key()`, run before every request under an authenticated prefix, answers the failure
`identify()` found, records `last_used` / sliding expiry, and puts the key and user in the environ.
Every request checks the key and its user (one query by primary key; on SQLite an answer is reused
only while `PRAGMA data_version` proves nothing was committed since, see database/pinned.py; on
PostgreSQL while the token cache's listener has heard of no change, see database/keycache.py): a
revoked key or a suspended user is refused on every node within milliseconds; expiry is compared
with the clock here, on every request.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from flask import current_app, request
from sqlalchemy.exc import SQLAlchemyError

from coderapi import apikey
from coderapi.database.apikeys import APIKey
from coderapi.database.users import STATUS_ACTIVE, User, now
from coderapi.goformat import go_time_string, quote
from coderapi.httpapi import APIError
from coderapi.httpmw import environ as keys
from coderapi.httpmw.realip import client_ip
from coderapi.runtime import EXTENSION_KEY as RUNTIME_KEY
from coderapi.runtime import Runtime, runtime

if TYPE_CHECKING:
    from coderapi.config import DeploymentValues

log = logging.getLogger(__name__)

SESSION_TOKEN_COOKIE = "coder_session_token"  # noqa: S105 (a name, not a secret)
SESSION_TOKEN_QUERY = "coder_session_token"  # noqa: S105 (a name, not a secret)
SESSION_TOKEN_HEADER = "Coder-Session-Token"  # noqa: S105 (a name, not a secret)
ACCESS_TOKEN_QUERY = "access_token"  # noqa: S105 (a name, not a secret)

SIGNED_OUT_MESSAGE = "You are signed out or your session has expired. Please sign in again to continue."
INTERNAL_ERROR_MESSAGE = "An internal error occurred. Please try again or contact the system administrator."
NO_TOKEN_DETAIL = f'Cookie "{SESSION_TOKEN_COOKIE}" or query parameter must be provided.'
BAD_FORMAT_DETAIL = "Invalid API key format: {err}"
KEY_INVALID_DETAIL = "API key is invalid."
SECRET_INVALID_DETAIL = "API key secret is invalid."  # noqa: S105 (a name, not a secret)
EXPIRED_DETAIL = 'API key expired at "{at}".'
FETCH_KEY_ERROR_DETAIL = "Internal error fetching API key by id. {err}"
UPDATE_KEY_ERROR_DETAIL = "API key couldn't update: {err}."
USER_NOT_ACTIVE_MESSAGE = 'User is not active (status = "{status}"). Contact an admin to reactivate your account.'

WWW_AUTHENTICATE = "WWW-Authenticate"
DESCRIPTION_EXPIRED = "The access token has expired"
DESCRIPTION_AUDIENCE = "The access token audience does not match this resource"
DESCRIPTION_INVALID = "The access token is invalid"

LAST_USED_INTERVAL = dt.timedelta(hours=1)


class Refused(enum.StrEnum):
    """Why the check refused a request: its `APIError.reason`, the metrics' label (the lower-case
    name)."""

    MISSING = enum.auto()
    MALFORMED = enum.auto()
    INVALID_KEY = enum.auto()
    INVALID_SECRET = enum.auto()
    EXPIRED = enum.auto()
    INACTIVE_USER = enum.auto()
    INTERNAL_ERROR = enum.auto()


@dataclass(frozen=True)
class AuthConfig:
    """What the check reads from the deployment options, resolved once per app."""

    disable_expiry_refresh: bool
    access_url: str  # base of WWW-Authenticate's resource_metadata; "" means the request's own host

    @classmethod
    def from_values(cls, values: DeploymentValues) -> AuthConfig:
        access_url = values.effective.access_url
        return cls(
            disable_expiry_refresh=bool(values.effective.session_lifetime.disable_expiry_refresh),
            access_url=(str(access_url) if access_url is not None else "").rstrip("/"),
        )


class Authenticated(NamedTuple):
    key: APIKey
    user: User


def token_from_request(env: dict[str, Any]) -> str:
    """The session token of the request whose WSGI environ is `env`, from the first non-empty source in
    coderd's order (cookie, query `coder_session_token`, header, `Authorization: Bearer`, query
    `access_token`); "" when none.

    Parses the cookie header and the query string only when they could hold a token: this runs on
    every authenticated request."""
    if SESSION_TOKEN_COOKIE in env.get("HTTP_COOKIE", ""):
        token = request.cookies.get(SESSION_TOKEN_COOKIE, "")
        if token:
            return token
    has_query = bool(env.get("QUERY_STRING"))
    if has_query:
        token = request.args.get(SESSION_TOKEN_QUERY, "")
        if token:
            return token
    token = _header_text(env.get("HTTP_CODER_SESSION_TOKEN", "")).strip()
    if token:
        return token
    authz = _header_text(env.get("HTTP_AUTHORIZATION", "")).strip()
    if authz[:7].lower() == "bearer ":
        token = authz[7:].strip()
        if token:
            return token
    return request.args.get(ACCESS_TOKEN_QUERY, "").strip() if has_query else ""


def _header_text(value: str) -> str:
    """A header value as the text its bytes spell: WSGI hands headers over decoded as latin-1, so a
    UTF-8 token would otherwise count two characters (and bytes) per non-ASCII byte, where coderd
    counts the bytes on the wire."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value


def _db_error_text(err: SQLAlchemyError) -> str:
    """One line describing a database error: the driver's message without SQL or parameters."""
    orig = getattr(err, "orig", None)
    text = str(orig) if orig is not None else type(err).__name__
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


def _www_authenticate(message: str, detail: str) -> str:
    if "expired" in message or "expired" in detail:
        error, description = "invalid_token", DESCRIPTION_EXPIRED
    elif "audience" in message or "mismatch" in message:
        error, description = "invalid_token", DESCRIPTION_AUDIENCE
    else:
        error, description = "invalid_token", DESCRIPTION_INVALID
    # coderd: the access URL, else the scheme of the connection plus the Host header exactly as sent
    # (werkzeug's `host_url` drops a Host it finds invalid, which coderd does not).
    environ = request.environ
    base = runtime().auth.access_url or f"{environ['wsgi.url_scheme']}://{_header_text(environ.get('HTTP_HOST', ''))}"
    metadata = quote(base + "/.well-known/oauth-protected-resource")
    value = f'Bearer realm="coder", error="{error}", error_description="{description}", resource_metadata={metadata}'
    # Go writes the header's UTF-8 bytes; a WSGI header value is their latin-1 text.
    return value if value.isascii() else value.encode("utf-8").decode("latin-1")


def _refuse(reason: Refused, message: str, detail: str = "") -> APIError:
    """The check's 401 for `reason`."""
    return APIError(401, message, detail, headers={WWW_AUTHENTICATE: _www_authenticate(message, detail)}, reason=reason)


def _check(environ: dict[str, Any], rt: Runtime, at: dt.datetime) -> Authenticated | APIError:
    """Validate the request's token at time `at`: coderd's checks in order, the first failure answers."""
    token = token_from_request(environ)
    if not token:
        return _refuse(Refused.MISSING, SIGNED_OUT_MESSAGE, NO_TOKEN_DETAIL)
    try:
        key_id, secret = apikey.split(token)
    except apikey.APIKeyFormatError as err:
        return _refuse(Refused.MALFORMED, SIGNED_OUT_MESSAGE, BAD_FORMAT_DETAIL.format(err=err))
    if not (key_id.isascii() and key_id.isalnum()):
        # Ids are generated from 0-9A-Za-z: any other id names no key, and NUL bytes or undecodable
        # bytes must not reach the database driver (PostgreSQL refuses NUL in text).
        return _refuse(Refused.INVALID_KEY, SIGNED_OUT_MESSAGE, KEY_INVALID_DETAIL)
    try:
        found = rt.store.get_api_key_with_user(key_id)
    except SQLAlchemyError as err:
        log.error("fetching api key %s: %s", key_id, _db_error_text(err))
        return _refuse(
            Refused.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE, FETCH_KEY_ERROR_DETAIL.format(err=_db_error_text(err))
        )
    if found is None:
        return _refuse(Refused.INVALID_KEY, SIGNED_OUT_MESSAGE, KEY_INVALID_DETAIL)
    key, user = found
    if not apikey.validate_hash(key.hashed_secret, secret):
        return _refuse(Refused.INVALID_SECRET, SIGNED_OUT_MESSAGE, SECRET_INVALID_DETAIL)
    if key.expires_at <= at:
        return _refuse(Refused.EXPIRED, SIGNED_OUT_MESSAGE, EXPIRED_DETAIL.format(at=go_time_string(key.expires_at)))
    if user.deleted:
        # Deleting a user deletes their keys; a key left behind is as good as unknown.
        return _refuse(Refused.INVALID_KEY, SIGNED_OUT_MESSAGE, KEY_INVALID_DETAIL)
    if user.status != STATUS_ACTIVE:
        # No dormant-user activator exists here (there is no login), so dormant users are refused too.
        return _refuse(Refused.INACTIVE_USER, USER_NOT_ACTIVE_MESSAGE.format(status=user.status))
    return Authenticated(key, user)


def _outcome(environ: dict[str, Any], rt: Runtime, at: dt.datetime) -> Authenticated | APIError:
    outcome: Authenticated | APIError | None = environ.get(keys.AUTH_OUTCOME)
    if outcome is None:
        outcome = environ[keys.AUTH_OUTCOME] = _check(environ, rt, at)
    return outcome


def identify() -> Authenticated | None:
    """The request's key and user when it carries a valid token, else None. Checked once per request;
    no side effects (used by the rate limiter before the token check proper)."""
    outcome = _outcome(request.environ, runtime(), now())
    return outcome if isinstance(outcome, Authenticated) else None


def require_api_key(environ: dict[str, Any]) -> None:
    """Answer the token's failure, or record its use and put the key and user in the request's WSGI
    environ.

    Aborts: 401 (every row of coderd's table that applies), 500 when recording the use fails.
    """
    if keys.API_KEY in environ:
        return
    rt: Runtime = current_app.extensions[RUNTIME_KEY]
    at = now()
    outcome = _outcome(environ, rt, at)
    if isinstance(outcome, APIError):
        raise outcome
    environ[keys.API_KEY] = _record_use(outcome.key, rt, at)
    environ[keys.USER] = outcome.user


class Prefixes:
    """Path prefixes, each matching itself and everything below it."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.exact = frozenset(prefixes)
        self.below = tuple(p + "/" for p in prefixes)

    def match(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.below)


def require_api_key_under(prefixes: Prefixes, environ: dict[str, Any]) -> None:
    """The token check for every request under an authenticated prefix, matched or not, so
    `GET /api/v2/deployment/nope` gets 401 without a token and 404 with one (chi runs a group's
    middleware before routing inside it)."""
    # PATH_INFO, not werkzeug's decoded path: the prefixes are ASCII, and runs of `/` are collapsed.
    if prefixes.match(environ.get("PATH_INFO", "")):
        require_api_key(environ)


_lifetime = functools.lru_cache(maxsize=256)(lambda seconds: dt.timedelta(seconds=seconds))


def _record_use(key: APIKey, rt: Runtime, at: dt.datetime) -> APIKey:
    """coderd's side effects at time `at`: `last_used` and `ip_address` at most hourly, sliding expiry
    unless disabled. Aborts: 500 when the update fails."""
    last_used, expires_at, ip = key.last_used, key.expires_at, key.ip_address
    changed = False
    if at - key.last_used > LAST_USED_INTERVAL:
        last_used, ip, changed = at, client_ip(), True
    if not rt.auth.disable_expiry_refresh and key.lifetime_seconds > 0:
        lifetime = _lifetime(key.lifetime_seconds)
        if key.expires_at - at <= lifetime - LAST_USED_INTERVAL:
            expires_at, changed = at + lifetime, True
    if not changed:
        return key
    try:
        rt.store.update_api_key_usage(key.id, last_used=last_used, expires_at=expires_at, ip_address=ip)
    except SQLAlchemyError as err:
        log.error("updating api key %s: %s", key.id, _db_error_text(err))
        raise APIError(500, INTERNAL_ERROR_MESSAGE, UPDATE_KEY_ERROR_DETAIL.format(err=_db_error_text(err))) from None
    return APIKey(**{**key.__dict__, "last_used": last_used, "expires_at": expires_at, "ip_address": ip})


def current_api_key() -> APIKey:
    """The signed-in request's API key. Fails loudly if the token check did not run."""
    key = request.environ.get(keys.API_KEY)
    if key is None:
        raise RuntimeError("api key missing: require_api_key did not run for this route")
    return key  # type: ignore[no-any-return]


def current_user() -> User:
    """The signed-in request's user. Fails loudly if the token check did not run."""
    user = request.environ.get(keys.USER)
    if user is None:
        raise RuntimeError("user missing: require_api_key did not run for this route")
    return user  # type: ignore[no-any-return]
