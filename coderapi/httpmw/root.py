"""The middleware of coderd's root router, as one WSGI layer in front of Flask.

In coderd's order: the request's arrival time, single slashes, the request id, the client's real IP,
CORS (a preflight is answered here, before the rate limiter and the token check), the headers every
response carries (request id, build version; `nosniff` and the CORS and CSRF `Vary` lines except on a
preflight; the rate limiter's headers when it counted the request), and the request's log line once the
app has answered.

Every request passes here, so it is one WSGI call rather than a pair of Flask hooks per concern: each
concern is a few environ lookups, and the extra headers are appended to the list `start_response`
receives instead of going through werkzeug's header objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from coderapi.httpmw import environ as keys
from coderapi.httpmw.cors import ALLOW_ORIGIN, CORS
from coderapi.httpmw.ratelimit import rate_limit_headers
from coderapi.httpmw.realip import RealIPConfig
from coderapi.httpmw.requestid import HEADER as REQUEST_ID_HEADER
from coderapi.httpmw.requestid import new_request_id
from coderapi.httpmw.singleslash import single_slash

BUILD_VERSION_HEADER = "X-Coder-Build-Version"
# After the CORS layer in coderd's stack: not on a preflight, which CORS answers first.
AFTER_CORS = (("X-Content-Type-Options", "nosniff"), ("Vary", "Origin"), ("Vary", "Cookie"))

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RootMiddleware:
    def __init__(
        self,
        app: WSGIApp,
        *,
        build_version: str,
        realip: RealIPConfig,
        cors: CORS,
        log_request: Callable[[dict[str, Any], int], None],
    ) -> None:
        self.app = app
        self.log_request = log_request
        self.realip = realip
        self.cors = cors
        self.after_id = [(BUILD_VERSION_HEADER, build_version)]
        self.after_id_and_cors = [*self.after_id, *AFTER_CORS]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ[keys.START] = time.perf_counter()
        single_slash(environ)
        rid = environ[keys.REQUEST_ID] = new_request_id()
        environ[keys.CLIENT_IP] = self.realip.client_ip_of(environ)
        preflight = self.cors.preflight(environ)
        if preflight is not None:
            # An empty answer, as Go writes it: no Content-Type.
            start_response("200 OK", [("Content-Length", "0"), *preflight, (REQUEST_ID_HEADER, rid), *self.after_id])
            self.log_request(environ, 200)
            return [b""]

        extra = [(REQUEST_ID_HEADER, rid), *self.after_id_and_cors]
        if self.cors.allows_origin(environ):
            extra.append(ALLOW_ORIGIN)
        answered: list[int] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered.append(int(status[:3]))
            # werkzeug hands over a new list for every response: extended in place.
            if keys.RATE_LIMIT in environ:
                headers.extend(rate_limit_headers(environ))
            headers.extend(extra)
            return start_response(status, headers, exc_info)

        body = self.app(environ, start)
        self.log_request(environ, answered[-1] if answered else 500)
        return body
