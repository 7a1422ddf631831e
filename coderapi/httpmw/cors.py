"""CORS as coderd's `httpmw.Cors` (go-chi/cors) sets it up.

Permissive only with `--dangerous-allow-cors-requests`; otherwise no origin is allowed and only the
`Vary` lines are written. A preflight (OPTIONS carrying `Access-Control-Request-Method`) is answered
here, 200 with an empty body, before the rate limiter and the token check, as chi's CORS middleware
answers it before the rest of the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, g, request

ALLOWED_METHODS = frozenset({"GET", "OPTIONS"})
# go-chi/cors always allows Origin besides the configured headers.
ALLOWED_HEADERS = frozenset({"accept", "content-type", "x-latency-check", "x-csrf-token", "origin"})
PREFLIGHT_VARY = ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")


@dataclass(frozen=True)
class CORS:
    allow_all: bool

    def preflight(self) -> Response | None:
        """`before_request`: answer a preflight; anything else goes on."""
        env = request.environ
        if env.get("REQUEST_METHOD") != "OPTIONS" or "HTTP_ACCESS_CONTROL_REQUEST_METHOD" not in env:
            return None
        g.cors_preflight = True
        resp = Response(b"", status=200)
        del resp.headers["Content-Type"]  # an empty answer, as Go writes it
        for value in PREFLIGHT_VARY:
            resp.headers.add("Vary", value)
        if not (self.allow_all and env.get("HTTP_ORIGIN")):
            return resp
        method = env["HTTP_ACCESS_CONTROL_REQUEST_METHOD"].upper()
        if method not in ALLOWED_METHODS:
            return resp
        requested = [_canonical(h) for h in env.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").split(",") if h.strip()]
        if any(h.lower() not in ALLOWED_HEADERS for h in requested):
            return resp
        resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Access-Control-Allow-Methods"] = method
        if requested:
            resp.headers["Access-Control-Allow-Headers"] = ", ".join(requested)
        return resp

    def actual(self, resp: Response) -> Response:
        """`after_request`: with every origin allowed, a GET or OPTIONS carrying `Origin` may be read."""
        if g.get("cors_preflight"):
            return resp
        if self.allow_all and request.method in ALLOWED_METHODS and request.headers.get("Origin"):
            resp.headers["Access-Control-Allow-Origin"] = "*"
        return resp


def _canonical(name: str) -> str:
    """Go's `http.CanonicalHeaderKey`: `x-csrf-token` -> `X-Csrf-Token`."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.strip().split("-"))
