"""Collapse runs of `/` in the path used for routing, as coderd's singleSlashMW does.

At the WSGI layer (in the root middleware) because werkzeug would otherwise answer `//` paths with a
redirect. The path as sent stays in the environ under `RAW_PATH` (the request log shows it). The rate
limiter keys on the collapsed path, unlike coderd's (on r.URL.Path), so extra slashes give no new budget.
"""

from __future__ import annotations

import re
from typing import Any

from coderapi.httpmw.environ import RAW_PATH

_SLASHES = re.compile("/{2,}")


def single_slash(environ: dict[str, Any]) -> None:
    path = environ.get("PATH_INFO", "")
    environ[RAW_PATH] = path
    if "//" in path:
        environ["PATH_INFO"] = _SLASHES.sub("/", path)
