"""Routes that need no session token: the API root, build info and the update check."""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi.httpapi import envelope, internal_error, write
from coderapi.runtime import runtime
from coderapi.sdk.updatecheck import update_check_schema
from coderapi.services.updatecheck import is_current

bp = Blueprint("public", __name__, url_prefix="/api/v2")

API_ROOT_MESSAGE = "👋"


@bp.get("")
@bp.get("/")
def api_root() -> Response:
    return write(200, envelope(API_ROOT_MESSAGE))


@bp.get("/buildinfo")
def build_info() -> Response:
    return runtime().answers.buildinfo.response()


@bp.get("/updatecheck")
def update_check() -> Response:
    """Whether this build is the latest release, from the last stored check; never waits for the
    release feed. Our own version when checking is off or has never succeeded. Aborts: 500 when the
    stored result does not parse."""
    rt = runtime()
    checker = rt.update_checker
    latest = None
    if checker is not None:
        try:
            latest = checker.latest()
        except ValueError as err:
            raise internal_error(str(err)) from None
    if latest is None:
        body = {"current": True, "version": rt.build.version, "url": rt.build.external_url}
    else:
        body = {"current": is_current(rt.build.version, latest.version), "version": latest.version, "url": latest.url}
    return write(200, body, update_check_schema)
