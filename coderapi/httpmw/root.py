"""The middleware of coderd's root router, as one WSGI layer in front of Flask.

In coderd's order: the request's arrival time, single slashes, the request id, the client's real IP,
CORS (a preflight is answered here, before the rate limiter and the token check), the headers every
response carries (request id, build version; `nosniff` and the CORS and CSRF `Vary` lines except on a
preflight; the rate limiter's headers when it counted the request), and, once the app has answered, the
request's metrics (when Prometheus is on) and its log line.

Every request passes here, so it is one WSGI call rather than a pair of Flask hooks per concern: each
concern is a few environ lookups, and the extra headers are appended to the list `start_response`
receives instead of going through werkzeug's header objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Response, request

from coderapi.httpapi.errors import APIError
from coderapi.httpmw import environ as keys
from coderapi.httpmw.cors import ALLOW_ORIGIN, CORS
from coderapi.httpmw.ratelimit import rate_limit_headers
from coderapi.httpmw.realip import RealIPConfig
from coderapi.httpmw.requestid import HEADER as REQUEST_ID_HEADER
from coderapi.httpmw.requestid import new_request_id
from coderapi.httpmw.singleslash import single_slash

if TYPE_CHECKING:
    from coderapi.metrics import Metrics

BUILD_VERSION_HEADER = "X-Coder-Build-Version"
# After the CORS layer in coderd's stack: not on a preflight, which CORS answers first.
AFTER_CORS = (("X-Content-Type-Options", "nosniff"), ("Vary", "Origin"), ("Vary", "Cookie"))

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LogRequest = Callable[[dict[str, Any], int], None]


class RootMiddleware:
    def __init__(
        self,
        app: WSGIApp,
        *,
        build_version: str,
        realip: RealIPConfig,
        cors: CORS,
        log_request: LogRequest,
        metrics: Metrics | None = None,
    ) -> None:
        self.app, self.realip, self.cors = app, realip, cors
        self.log_request, self.metrics = log_request, metrics
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

        m = self.metrics
        if m is None:
            body = self.app(environ, start)
        else:
            m.concurrent.inc()
            try:
                body = self.app(environ, start)
            finally:
                m.concurrent.dec()
        status = answered[-1] if answered else 500
        if m is not None:
            observe(m, environ, status)
        self.log_request(environ, status)
        return body


def observe(m: Metrics, environ: dict[str, Any], status: int) -> None:
    """Record an answered request: its route, method, status and latency, and the reason when the
    token check refused it."""
    outcome = environ.get(keys.AUTH_OUTCOME)
    refused = outcome.reason if isinstance(outcome, APIError) and outcome.status == status else ""
    m.observe_request(
        status,
        environ.get("REQUEST_METHOD", "GET").upper(),
        environ.get(keys.ROUTE),
        time.perf_counter() - environ[keys.START],
        refused,
    )


def keep_route(resp: Response) -> Response:
    """`after_request` with metrics on: keep the rule Flask matched for `observe`, which runs after
    Flask has dropped its request."""
    rule = request.url_rule
    if rule is not None:
        request.environ[keys.ROUTE] = rule.rule
    return resp
