"""Routes that need no session token: the API root, build info and the update check."""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi.httpapi import envelope, raw, write
from coderapi.runtime import runtime

bp = Blueprint("public", __name__, url_prefix="/api/v2")

API_ROOT_MESSAGE = "👋"


@bp.get("")
@bp.get("/")
def api_root() -> Response:
    return write(200, envelope(API_ROOT_MESSAGE))


@bp.get("/buildinfo")
def build_info() -> Response:
    return raw(200, runtime().bodies["buildinfo"])
