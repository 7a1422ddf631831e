"""The route tree of /api/v2, in one place, grouped by auth like coderd.go's chi groups.

| blueprint      | prefix                 | auth                         |
|----------------|------------------------|------------------------------|
| public         | /api/v2                | none                         |
| csp            | /api/v2/csp            | session token (reference form); none (coderd form) |
| deployment     | /api/v2/deployment     | session token                |
| experiments    | /api/v2/experiments    | session token                |
| users          | /api/v2/users          | session token, then {user}   |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import Map, MapAdapter

from coderapi.httpmw import apikey, ratelimit, userparam
from coderapi.routes import csp, deployment, experiments, health, public, swagger, users
from coderapi.runtime import runtime

API_PREFIX = "/api/v2"
# chi groups with apiKeyMiddleware: every path under them needs a token, matched or not. `/csp` is one
# only in the reference form (the seed's security annotation); coderd registers it in public.
TOKEN_GROUPS = ("/deployment", "/experiments", "/users")
AUTHENTICATED_PREFIXES = apikey.Prefixes([API_PREFIX + p for p in ("/csp", *TOKEN_GROUPS)])
CODERD_AUTHENTICATED_PREFIXES = apikey.Prefixes([API_PREFIX + p for p in TOKEN_GROUPS])


class HTTPMap(Map):
    """werkzeug's URL map without websocket matching. werkzeug refuses an `Upgrade: websocket` request
    to a plain rule with 400; chi routes it like any request (none of these routes upgrades)."""

    def bind_to_environ(self, *args: Any, **kwargs: Any) -> MapAdapter:
        adapter = super().bind_to_environ(*args, **kwargs)
        if adapter.websocket:
            adapter.websocket = False
            adapter.url_scheme = "https" if adapter.url_scheme == "wss" else "http"
        return adapter


def register(app: Flask) -> None:
    routing_map = HTTPMap(strict_slashes=True, merge_slashes=False)
    for rule in app.url_map.iter_rules():
        routing_map.add(rule.empty())
    app.url_map = routing_map
    app.register_blueprint(public.bp)
    app.register_blueprint(csp.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(deployment.bp)
    app.register_blueprint(experiments.bp)
    # Outside /api/v2: no token, no rate limit.
    with app.app_context():
        rt = runtime()
        swagger.register(app, rt)
    apikey.install(app)
    # /api/v2's r.Use(apiRateLimiter): counts every request under /api/v2 before the token check.
    ratelimit.install(app)
    app.before_request(guard(CODERD_AUTHENTICATED_PREFIXES if rt.wire.csp_reports_public else AUTHENTICATED_PREFIXES))
    # Inside the users group, after its token check (app-wide hooks run before a blueprint's).
    use(app, users.bp, userparam.extract_user_param)
    # Outermost, in front of every middleware, as coderd mounts it before its stack.
    app.wsgi_app = health.Healthz(app.wsgi_app)  # type: ignore[method-assign]


def use(app: Flask, bp: Blueprint, *hooks: Callable[[], object]) -> None:
    """chi's `r.Use` on a group: run `hooks` before every view of `bp`, in order, on this app only."""
    app.before_request_funcs.setdefault(bp.name, []).extend(hooks)  # type: ignore[arg-type]


def guard(prefixes: apikey.Prefixes) -> Callable[[], None]:
    """The `before_request` of every request, after the rate limiter:

    - the token check for every path under an authenticated prefix, matched or not, so
      `GET /api/v2/deployment/nope` gets 401 without a token and 404 with one (chi runs a group's
      middleware before routing inside it);
    - then 405 for HEAD and OPTIONS: werkzeug answers them on every GET route by itself, coderd's chi
      does not (CORS preflights are answered before Flask)."""

    def check() -> None:
        environ = request.environ
        apikey.require_api_key_under(prefixes, environ)
        if environ.get("REQUEST_METHOD", "").upper() in ("HEAD", "OPTIONS"):
            rule = request.url_rule
            if rule is not None:
                raise MethodNotAllowed(valid_methods=sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}))

    return check
