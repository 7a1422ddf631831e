"""`X-Coder-Request-Id`: a fresh UUIDv4 for every request, kept in the environ for logs."""

from __future__ import annotations

import uuid

from flask import request

from coderapi.httpmw import environ as environ_keys

HEADER = "X-Coder-Request-Id"


def new_request_id() -> str:
    return str(uuid.uuid4())


def request_id() -> str:
    """The current request's id (set by the root middleware)."""
    rid = request.environ.get(environ_keys.REQUEST_ID)
    if rid is None:
        raise RuntimeError("request id missing: httpmw.install was not called")
    return str(rid)
