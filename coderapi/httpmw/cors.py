"""CORS as coderd's `httpmw.Cors` (go-chi/cors) sets it up.

Permissive only with `--dangerous-allow-cors-requests`; otherwise no origin is allowed and only the
`Vary` lines are written. A preflight (OPTIONS carrying `Access-Control-Request-Method`) is answered
by the root middleware, 200 with an empty body, before the rate limiter and the token check, as chi's
CORS middleware answers it before the rest of the stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALLOWED_METHODS = frozenset({"GET", "OPTIONS"})
# go-chi/cors always allows Origin besides the configured headers.
ALLOWED_HEADERS = frozenset({"accept", "content-type", "x-latency-check", "x-csrf-token", "origin"})
PREFLIGHT_VARY = ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
ALLOW_ORIGIN = ("Access-Control-Allow-Origin", "*")

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class CORS:
    allow_all: bool

    def preflight(self, environ: dict[str, Any]) -> Headers | None:
        """The headers answering a preflight (status 200, empty body); None for any other request."""
        if environ.get("REQUEST_METHOD") != "OPTIONS" or "HTTP_ACCESS_CONTROL_REQUEST_METHOD" not in environ:
            return None
        headers: Headers = [("Vary", value) for value in PREFLIGHT_VARY]
        if not (self.allow_all and environ.get("HTTP_ORIGIN")):
            return headers
        method = environ["HTTP_ACCESS_CONTROL_REQUEST_METHOD"].upper()
        if method not in ALLOWED_METHODS:
            return headers
        requested = [
            _canonical(h) for h in environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").split(",") if h.strip()
        ]
        if any(h.lower() not in ALLOWED_HEADERS for h in requested):
            return headers
        headers += [ALLOW_ORIGIN, ("Access-Control-Allow-Methods", method)]
        if requested:
            headers.append(("Access-Control-Allow-Headers", ", ".join(requested)))
        return headers

    def allows_origin(self, environ: dict[str, Any]) -> bool:
        """With every origin allowed, a GET or OPTIONS carrying `Origin` may be read by that origin."""
        if not self.allow_all:
            return False
        method = environ.get("REQUEST_METHOD", "").upper()  # as werkzeug reads it
        return method in ALLOWED_METHODS and bool(environ.get("HTTP_ORIGIN"))


def _canonical(name: str) -> str:
    """Go's `http.CanonicalHeaderKey`: `x-csrf-token` -> `X-Csrf-Token`."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.strip().split("-"))
