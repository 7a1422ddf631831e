"""Routes that need no session token: the API root, build info and the update check."""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi import semver
from coderapi.httpapi import envelope, internal_error, write
from coderapi.runtime import runtime
from coderapi.sdk.updatecheck import update_check_schema

bp = Blueprint("public", __name__, url_prefix="/api/v2")

API_ROOT_MESSAGE = "👋"


@bp.get("")
@bp.get("/")
def api_root() -> Response:
    return write(200, envelope(API_ROOT_MESSAGE))


@bp.get("/buildinfo")
def build_info() -> Response:
    return runtime().answer("buildinfo")


@bp.get("/updatecheck")
def update_check() -> Response:
    """Whether this build is the latest release, from the last stored check; never waits for the
    release feed. Our own version when checking is off or has never succeeded. Aborts: 500 when the
    stored result does not parse."""
    rt = runtime()
    checker = rt.services.get("update_checker")
    latest = None
    if checker is not None:
        checker.ensure_running()
        try:
            latest = checker.latest()
        except ValueError as err:
            raise internal_error(str(err)) from None
    if latest is None:
        body = {"current": True, "version": rt.build.version, "url": rt.build.external_url}
    else:
        current = semver.compare(semver.release_version(rt.build.version), latest.version) >= 0
        body = {"current": current, "version": latest.version, "url": latest.url}
    return write(200, body, update_check_schema)
