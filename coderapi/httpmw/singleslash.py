"""Collapse runs of `/` in the path used for routing, as coderd's singleSlashMW does.

WSGI-level because werkzeug would otherwise answer `//` paths with a redirect. The path as sent stays
in `environ["coderapi.raw_path"]` (the rate limiter keys on it, as coderd's does on r.URL.Path).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

RAW_PATH_KEY = "coderapi.raw_path"
_SLASHES = re.compile("/{2,}")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SingleSlash:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        environ[RAW_PATH_KEY] = path
        if "//" in path:
            environ["PATH_INFO"] = _SLASHES.sub("/", path)
        return self.app(environ, start_response)
