"""The route tree of /api/v2, in one place, grouped by auth like coderd.go's chi groups.

| blueprint      | prefix                 | auth                         |
|----------------|------------------------|------------------------------|
| public         | /api/v2                | none                         |
| csp            | /api/v2/csp            | session token                |
| deployment     | /api/v2/deployment     | session token                |
| experiments    | /api/v2/experiments    | session token                |
| users          | /api/v2/users          | session token, then {user}   |
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import MethodNotAllowed

from coderapi.routes import public

API_PREFIX = "/api/v2"


def register(app: Flask) -> None:
    app.url_map.strict_slashes = True
    app.url_map.merge_slashes = False
    app.register_blueprint(public.bp)
    app.before_request(reject_implicit_methods)


def reject_implicit_methods() -> None:
    """werkzeug answers HEAD (and OPTIONS) on every GET route by itself; coderd's chi does not, so
    those get 405 like any other method the route lacks. CORS preflights are answered earlier."""
    rule = request.url_rule
    if rule is None or request.method not in ("HEAD", "OPTIONS"):
        return
    methods = set(rule.methods or ())
    if request.method == "OPTIONS" or request.method == "HEAD":
        raise MethodNotAllowed(valid_methods=sorted(methods - {"HEAD", "OPTIONS"}))
