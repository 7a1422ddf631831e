"""Headers coderd's global middleware puts on every response."""

from __future__ import annotations

from flask import Response, g

from coderapi.httpmw.requestid import HEADER as REQUEST_ID_HEADER
from coderapi.runtime import runtime

BUILD_VERSION_HEADER = "X-Coder-Build-Version"


def add_common_headers(resp: Response) -> Response:
    rid = g.get("request_id")
    if rid:
        resp.headers[REQUEST_ID_HEADER] = rid
    resp.headers[BUILD_VERSION_HEADER] = runtime().build.version
    if g.get("cors_preflight"):
        # Answered by the CORS layer, which sits before nosniff and CSRF in coderd's stack.
        return resp
    resp.headers["X-Content-Type-Options"] = "nosniff"
    # CORS and CSRF each add their own Vary line in coderd.
    resp.headers.add("Vary", "Origin")
    resp.headers.add("Vary", "Cookie")
    return resp
