"""Middleware: what every request passes, in coderd's order."""

from __future__ import annotations

from flask import Flask

from coderapi.httpmw.cors import CORS
from coderapi.httpmw.realip import RealIPConfig
from coderapi.httpmw.root import RootMiddleware
from coderapi.runtime import runtime


def install(app: Flask) -> None:
    """Global middleware (coderd.go's root router), as a WSGI layer in front of Flask."""
    with app.app_context():
        rt = runtime()
        values = rt.values
        app.wsgi_app = RootMiddleware(  # type: ignore[method-assign]
            app.wsgi_app,
            build_version=rt.build.version,
            realip=RealIPConfig.parse(values.get("proxy_trusted_origins"), values.get("proxy_trusted_headers")),
            cors=CORS(allow_all=bool(values.get("dangerous.allow_all_cors"))),
            log_request=rt.request_log,
        )
