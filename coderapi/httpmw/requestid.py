"""`X-Coder-Request-Id`: a fresh UUIDv4 for every request, kept on `g` for logs."""

from __future__ import annotations

import uuid

from flask import g

HEADER = "X-Coder-Request-Id"


def attach_request_id() -> None:
    g.request_id = str(uuid.uuid4())


def request_id() -> str:
    rid = g.get("request_id")
    if rid is None:
        raise RuntimeError("request id missing: httpmw.install was not called")
    return str(rid)
