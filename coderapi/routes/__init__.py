"""The request stack and the route tree of /api/v2, in one place, grouped by auth like coderd.go's chi
groups. `mount` lists what runs for a request, in order.

| blueprint      | prefix                 | auth                         |
|----------------|------------------------|------------------------------|
| public         | /api/v2                | none                         |
| csp            | /api/v2/csp            | session token (reference form); none (coderd form) |
| deployment     | /api/v2/deployment     | session token                |
| experiments    | /api/v2/experiments    | session token                |
| users          | /api/v2/users          | session token, then {user}   |
| swagger        | /swagger               | none                         |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import Map, MapAdapter

from coderapi import metrics
from coderapi.httpapi import handlers
from coderapi.httpmw import apikey, ratelimit, root
from coderapi.httpmw.cors import CORS
from coderapi.httpmw.realip import RealIPConfig
from coderapi.routes import csp, deployment, experiments, health, public, swagger, users
from coderapi.runtime import Runtime

API_PREFIX = "/api/v2"
# chi groups with apiKeyMiddleware: every path under them needs a token, matched or not. `/csp` is one
# only in the reference form (the seed's security annotation); coderd registers it in public.
TOKEN_GROUPS = ("/deployment", "/experiments", "/users")
AUTHENTICATED_PREFIXES = apikey.Prefixes([API_PREFIX + p for p in ("/csp", *TOKEN_GROUPS)])
CODERD_AUTHENTICATED_PREFIXES = apikey.Prefixes([API_PREFIX + p for p in TOKEN_GROUPS])


class HTTPMap(Map):
    """werkzeug's URL map with slashes kept as sent and without websocket matching. werkzeug refuses an
    `Upgrade: websocket` request to a plain rule with 400; chi routes it like any request (none of these
    routes upgrades)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("merge_slashes", False)
        super().__init__(*args, **kwargs)

    def bind_to_environ(self, *args: Any, **kwargs: Any) -> MapAdapter:
        adapter = super().bind_to_environ(*args, **kwargs)
        if adapter.websocket:
            adapter.websocket = False
            adapter.url_scheme = "https" if adapter.url_scheme == "wss" else "http"
        return adapter


def mount(app: Flask, rt: Runtime) -> None:
    """The request stack on `app`, in the order a request meets it (coderd.go's `r.Use(...)` chain):

    1. `/healthz`, answered in front of everything (health.Healthz), as coderd mounts it first;
    2. the root WSGI layer (httpmw/root.py): arrival time, single slashes, request id, real IP, CORS
       (a preflight is answered here), the common headers, and once answered the metrics (the route
       kept by `root.keep_route`) and the request line;
    3. the /api/v2 rate limiter (httpmw/ratelimit.py), counting every request under /api/v2;
    4. the token check for every path under an authenticated prefix, then 405 for HEAD and OPTIONS
       (`guard`);
    5. `{user}` on the users group (users.bp's own hook: Flask runs a blueprint's hooks after the app's);
    6. the handlers (the blueprints), whose errors all become the envelope (httpapi/handlers.py).
    """
    cfg = rt.values.effective
    m = metrics.of(app)
    # 1, 2: WSGI layers in front of Flask.
    app.wsgi_app = health.Healthz(  # type: ignore[method-assign]
        root.RootMiddleware(
            app.wsgi_app,
            build_version=rt.build.version,
            realip=RealIPConfig.parse(cfg.proxy.trusted_origins, cfg.proxy.trusted_headers),
            cors=CORS(allow_all=cfg.dangerous.allow_all_cors),
            log_request=rt.request_log,
            metrics=m,
        )
    )
    if m is not None:
        app.after_request(root.keep_route)
    # 3, 4: app-wide hooks, run in the order added.
    if rt.limiter is not None:
        app.before_request(ratelimit.limit_api_request)
    app.before_request(guard(CODERD_AUTHENTICATED_PREFIXES if rt.wire.csp_reports_public else AUTHENTICATED_PREFIXES))
    # 5 is users.bp's own before_request (routes/users.py). 6: the route tree.
    handlers.register(app)
    for bp in (public.bp, csp.bp, users.bp, deployment.bp, experiments.bp, swagger.blueprint(rt.answers)):
        app.register_blueprint(bp)


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
