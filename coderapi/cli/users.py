"""`coderapi users`: create, list, suspend, activate and delete users."""

from __future__ import annotations

import re
import uuid

import click

from coderapi import rbac
from coderapi.cli.context import StoreGroup, open_store
from coderapi.cli.listing import echo_list, output_option
from coderapi.cli.options import fail
from coderapi.database import Store
from coderapi.database.users import STATUS_ACTIVE, STATUS_SUSPENDED, DuplicateUserError, User
from coderapi.sdk.users import user_schema

# coderd's username rule (codersdk.NameValid): letters and digits in hyphen-separated runs, 1-32 long.
USERNAME_RE = re.compile(r"[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*")
USERNAME_MAX = 32
# `me` names the signed-in user in `{user}`, so no one may be called that.
RESERVED_USERNAMES = frozenset({"me"})
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def validate_username(name: str) -> str:
    if not name or len(name) > USERNAME_MAX or not USERNAME_RE.fullmatch(name):
        fail(f"invalid username {name!r}: use 1-{USERNAME_MAX} letters or digits, optionally joined by single hyphens")
    if name.lower() in RESERVED_USERNAMES:
        fail(f"invalid username {name!r}: it is reserved")
    return name


def validate_email(email: str) -> str:
    if not EMAIL_RE.fullmatch(email):
        fail(f"invalid email {email!r}")
    return email


def find_user(store: Store, name: str) -> User:
    """The user named by a username (case-insensitive) or UUID. Exits 1 when there is none."""
    try:
        user_id: uuid.UUID | None = uuid.UUID(name)
    except ValueError:
        user_id = None
    found = store.get_user_by_id(user_id) if user_id is not None else None
    if found is None:
        found = store.get_user_by_username(name)
    if found is None:
        fail(f"no user named {name!r}")
    return found


@click.group(cls=StoreGroup)
def users() -> None:
    """Manage the users who sign in with API tokens."""


@users.command("create")
@click.option("--username", required=True, help="Unique, case-insensitive login name.")
@click.option("--email", required=True, help="The user's email address (unique).")
@click.option("--roles", default="", help="Comma-separated site roles: owner, auditor, template-admin, user-admin.")
def create(username: str, email: str, roles: str) -> None:
    """Create a user and print their UUID."""
    validate_username(username)
    validate_email(email)
    try:
        role_names = rbac.parse_roles(roles.split(","))
    except rbac.UnknownRoleError as err:
        fail(str(err))
    store = open_store()
    try:
        user = store.insert_user(username, email, role_names)
    except DuplicateUserError as err:
        fail(str(err))
    finally:
        store.close()
    click.echo(str(user.id))


@users.command("list")
@output_option
def list_users(output: str) -> None:
    """List the users that are not deleted."""
    store = open_store()
    try:
        found = store.list_users()
    finally:
        store.close()
    header = ("ID", "USERNAME", "EMAIL", "STATUS", "ROLES")
    rows = [(str(u.id), u.username, u.email, u.status, ",".join(u.rbac_roles) or "member") for u in found]
    echo_list(output, found, user_schema, header, rows)


def _set_status(name: str, status: str) -> None:
    store = open_store()
    try:
        user = find_user(store, name)
        store.update_user_status(user.id, status)
    finally:
        store.close()
    click.echo(f"user {user.username} is {status}")


@users.command("suspend")
@click.argument("name")
def suspend(name: str) -> None:
    """Suspend a user: their tokens are refused from the next request on."""
    _set_status(name, STATUS_SUSPENDED)


@users.command("activate")
@click.argument("name")
def activate(name: str) -> None:
    """Make a suspended or dormant user active again."""
    _set_status(name, STATUS_ACTIVE)


@users.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete a user and every token they hold."""
    store = open_store()
    try:
        user = find_user(store, name)
        store.delete_user(user.id)
    finally:
        store.close()
    click.echo(f"user {user.username} deleted")
