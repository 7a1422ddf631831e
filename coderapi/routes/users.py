"""Routes under /api/v2/users: session token, then `{user}` resolution."""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi import rbac
from coderapi.httpapi import write
from coderapi.httpmw.userparam import user_param
from coderapi.runtime import runtime
from coderapi.sdk.users import token_config_schema

bp = Blueprint("users", __name__, url_prefix="/api/v2/users")


def max_token_lifetime_ns(roles: tuple[str, ...]) -> int:
    """coderd's getMaxTokenLifetime: the admin cap when the user is an owner, else the general cap."""
    values = runtime().values
    key = "session_lifetime.max_admin_token_lifetime" if rbac.is_owner(roles) else "session_lifetime.max_token_lifetime"
    return int(values.get(key))


@bp.get("/<user>/keys/tokens/tokenconfig")
def token_config(user: str) -> Response:
    """The longest lifetime a new token of the *target* user may have."""
    return write(200, {"max_token_lifetime": max_token_lifetime_ns(user_param().rbac_roles)}, token_config_schema)
