"""The `{user}` path parameter (coderd `httpmw/userparam.go`): `me`, a UUID, or a username.

Lookups run as the signed-in user: a member can resolve only themselves; owner, auditor, user-admin and
template-admin can read every user. Another user a member cannot read is answered like a missing one.
"""

from __future__ import annotations

import uuid

from flask import request
from sqlalchemy.exc import SQLAlchemyError

from coderapi import rbac
from coderapi.database.users import User
from coderapi.httpapi import APIError
from coderapi.httpmw import environ as keys
from coderapi.httpmw.apikey import current_user
from coderapi.runtime import runtime

USER_PARAM = "user"
ME = "me"
USER_NOT_PROVIDED_MESSAGE = '"user" must be provided.'
USER_NOT_FOUND_MESSAGE = '"user" must be an existing uuid or username.'
USER_NOT_FOUND_DETAIL = 'queried user="{raw}"'


def _readable(target: User) -> bool:
    actor = current_user()
    return rbac.allows(actor.rbac_roles, rbac.ACTION_READ, rbac.RESOURCE_USER, owned=target.id == actor.id)


def resolve_user(raw: str) -> User:
    """The user `raw` names, as the signed-in user sees it.

    Aborts: 400 empty, unknown or unreadable user (a database error included, as coderd).
    """
    if raw == "":
        raise APIError(400, USER_NOT_PROVIDED_MESSAGE)
    if raw == ME:
        # The key's own user, read by this request's token check a moment ago (coderd reads it again).
        return current_user()
    not_found = APIError(400, USER_NOT_FOUND_MESSAGE, USER_NOT_FOUND_DETAIL.format(raw=raw))
    try:
        user_id = uuid.UUID(raw)
    except ValueError:
        user_id = None
    store = runtime().store
    try:
        found = store.get_user_by_id(user_id) if user_id is not None else store.get_user_by_username(raw)
    except SQLAlchemyError:
        # coderd answers every lookup error of a UUID or username with the same 400.
        raise not_found from None
    if found is None or not _readable(found):
        raise not_found
    return found


def extract_user_param() -> None:
    """`before_request` of the `/users/{user}` routes: resolve `{user}` into the request's environ."""
    raw = (request.view_args or {}).get(USER_PARAM)
    if raw is None:
        return
    request.environ[keys.USER_PARAM] = resolve_user(str(raw))


def user_param() -> User:
    """The user named by `{user}`. Fails loudly if `extract_user_param` did not run."""
    found = request.environ.get(keys.USER_PARAM)
    if found is None:
        raise RuntimeError("user param missing: extract_user_param did not run for this route")
    return found  # type: ignore[no-any-return]
