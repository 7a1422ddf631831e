"""Routes under /api/v2/users: session token, then `{user}` resolution."""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi import apikey
from coderapi.httpapi import write
from coderapi.httpmw.userparam import extract_user_param, user_param
from coderapi.runtime import runtime
from coderapi.sdk.users import token_config_schema

bp = Blueprint("users", __name__, url_prefix="/api/v2/users")
# The group's r.Use(ExtractUserParam): after the app-wide token check, as Flask runs a blueprint's hooks
# after the app's.
bp.before_request(extract_user_param)


@bp.get("/<user>/keys/tokens/tokenconfig")
def token_config(user: str) -> Response:
    """The longest lifetime a new token of the *target* user may have."""
    return write(
        200,
        {"max_token_lifetime": apikey.max_lifetime_ns(runtime().values, user_param().rbac_roles)},
        token_config_schema,
    )
