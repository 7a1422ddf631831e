"""`coderapi tokens`: create, list and delete a user's API tokens.

A new token is printed alone on stdout and never again: only the SHA-256 of its secret is stored.
Lifetimes follow coderd: the deployment's `default_token_lifetime` when none is given, at most
`max_token_lifetime` (`max_admin_token_lifetime` for owners).
"""

from __future__ import annotations

import datetime as dt
import re

import click

from coderapi import apikey, config
from coderapi.cli.context import StoreGroup, load_values, open_store
from coderapi.cli.listing import echo_list, output_option
from coderapi.cli.options import fail
from coderapi.cli.users import find_user
from coderapi.database.apikeys import DuplicateTokenNameError
from coderapi.goformat import format_duration
from coderapi.sdk.users import api_key_schema

TOKEN_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}")
_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    # The Coder CLI's extended durations.
    "d": 24 * 3600 * 1_000_000_000,
    "y": 365 * 24 * 3600 * 1_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|y)")


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> int:
    """Nanoseconds from a Go duration (`24h`, `1h30m`, `90s`), plus `d` and `y` as the Coder CLI
    accepts. Raises DurationError."""
    s = text.strip()
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise DurationError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise DurationError(f"invalid duration {text!r}")
    return sign * int(total)


def token_lifetime_ns(requested: int | None, roles: tuple[str, ...], values: config.DeploymentValues) -> int:
    """The lifetime coderd gives a new token. Exits 1 with coderd's 400 text when the lifetime is refused."""
    if requested is None:
        return apikey.default_lifetime_ns(values, roles)
    max_ns = apikey.max_lifetime_ns(values, roles)
    if requested <= 0:
        fail("lifetime must be positive number greater than 0")
    if requested > max_ns:
        fail(f"lifetime must be less than {format_duration(max_ns)}")
    return requested


@click.group(cls=StoreGroup)
def tokens() -> None:
    """Manage users' API tokens."""


@tokens.command("create")
@click.option("--user", "user_name", required=True, help="Username or UUID of the token's owner.")
@click.option("--lifetime", default=None, help="How long the token lives (e.g. 24h, 720h, 30d).")
@click.option("--name", "token_name", default="", help="A name for the token, unique per user.")
def create(user_name: str, lifetime: str | None, token_name: str) -> None:
    """Create a token and print it (only the token, on stdout)."""
    requested = None
    if lifetime is not None:
        try:
            requested = parse_duration(lifetime)
        except DurationError as err:
            fail(str(err))
    if token_name and not TOKEN_NAME_RE.fullmatch(token_name):
        fail(f"invalid token name {token_name!r}: 1-32 letters, digits, '-' or '_', starting with a letter or digit")
    values = load_values()
    store = open_store()
    try:
        user = find_user(store, user_name)
        lifetime_ns = token_lifetime_ns(requested, user.rbac_roles, values)
        seconds = max(1, lifetime_ns // 1_000_000_000)
        token = apikey.issue(store, user.id, dt.timedelta(seconds=seconds), token_name=token_name)
    except DuplicateTokenNameError as err:
        fail(str(err))
    finally:
        store.close()
    click.echo(token)


@tokens.command("list")
@click.option("--user", "user_name", required=True, help="Username or UUID.")
@output_option
def list_tokens(user_name: str, output: str) -> None:
    """List a user's tokens (ids and names; secrets are never stored)."""
    store = open_store()
    try:
        user = find_user(store, user_name)
        keys = store.list_api_keys_by_user(user.id)
    finally:
        store.close()
    header = ("ID", "NAME", "LAST USED", "EXPIRES AT", "CREATED AT")
    rows = [(k.id, k.token_name, _iso(k.last_used), _iso(k.expires_at), _iso(k.created_at)) for k in keys]
    echo_list(output, keys, api_key_schema, header, rows)


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@tokens.command("delete")
@click.option("--user", "user_name", required=True, help="Username or UUID.")
@click.argument("id_or_name")
def delete(user_name: str, id_or_name: str) -> None:
    """Delete a token by id or name: it is refused from the next request on."""
    store = open_store()
    try:
        user = find_user(store, user_name)
        match = [k for k in store.list_api_keys_by_user(user.id) if id_or_name in (k.id, k.token_name)]
        if not match:
            fail(f"user {user.username} has no token with id or name {id_or_name!r}")
        store.delete_api_key(match[0].id)
    finally:
        store.close()
    click.echo(f"token {match[0].id} deleted")
