"""`GET /healthz`: plain `OK` for load balancers, outside /api/v2 and outside the global middleware.

coderd registers it on the root router before its middleware stack, so it carries no request id, build
version or rate-limit headers and never touches the database. Here it is answered at the WSGI layer,
in front of Flask, which also keeps it cheap enough to poll often.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from coderapi.httpapi.errors import METHOD_NOT_ALLOWED, envelope
from coderapi.httpapi.jsonwire import encode
from coderapi.httpapi.write import JSON_CONTENT_TYPE

PATH = "/healthz"
BODY = b"OK"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Healthz:
    """WSGI middleware answering `/healthz`; every other path goes to the wrapped app."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._not_allowed = encode(envelope(METHOD_NOT_ALLOWED))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "GET":
            start_response(
                "200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]
            )
            return [BODY]
        body = self._not_allowed
        start_response(
            "405 Method Not Allowed",
            [("Content-Type", JSON_CONTENT_TYPE), ("Content-Length", str(len(body))), ("Allow", "GET")],
        )
        return [body]
