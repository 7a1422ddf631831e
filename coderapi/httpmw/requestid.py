"""`X-Coder-Request-Id`: a fresh UUIDv4 for every request, kept in the environ for logs."""

from __future__ import annotations

import os

HEADER = "X-Coder-Request-Id"


def new_request_id() -> str:
    """A random (version 4) UUID's text. Written out rather than `str(uuid.uuid4())`, which builds a
    UUID object and formats a 128-bit integer on the way: this runs for every request."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
