"""Middleware: before/after-request hooks that every request passes, in coderd's order."""

from __future__ import annotations

from flask import Flask

from coderapi.httpmw.cors import CORS
from coderapi.httpmw.headers import add_common_headers
from coderapi.httpmw.realip import RealIPConfig, extract_real_ip
from coderapi.httpmw.requestid import attach_request_id
from coderapi.httpmw.singleslash import SingleSlash
from coderapi.runtime import runtime


def install(app: Flask) -> None:
    """Global middleware, outermost first (coderd.go's root router)."""
    with app.app_context():
        values = runtime().values
        cors = CORS(allow_all=bool(values.get("dangerous.allow_all_cors")))
        realip = RealIPConfig.parse(values.get("proxy_trusted_origins"), values.get("proxy_trusted_headers"))
    app.wsgi_app = SingleSlash(app.wsgi_app)  # type: ignore[method-assign]

    def begin() -> None:
        attach_request_id()
        extract_real_ip(realip)

    app.before_request(begin)
    app.before_request(cors.preflight)
    app.after_request(cors.actual)
    app.after_request(add_common_headers)
