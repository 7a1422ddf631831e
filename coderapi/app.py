"""`create_app`: the only place an app is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from coderapi import buildinfo, logs, metrics, routes
from coderapi.config import DeploymentValues, load
from coderapi.config.experiments import EXPERIMENTS_SAFE
from coderapi.config.settings import Settings, process_environ
from coderapi.database import Store
from coderapi.database.open import open_store
from coderapi.httpapi import Prebuilt
from coderapi.httpapi.jsonwire import encode
from coderapi.httpmw import ratelimit
from coderapi.httpmw.apikey import AuthConfig
from coderapi.routes import swagger
from coderapi.runtime import EXTENSION_KEY, Answers, Runtime
from coderapi.sdk.buildinfo import build_info_response
from coderapi.sdk.wireform import WIRE_FORMS
from coderapi.services import statscache, updatecheck, webpush


class CoderAPI(Flask):
    """The service's Flask app. Every view and hook is synchronous, so Flask's per-call check for
    coroutine functions (run for each hook of each request) is skipped."""

    url_map_class = routes.HTTPMap

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def create_app(
    values: DeploymentValues | None = None, store: Store | None = None, settings: Settings | None = None
) -> Flask:
    """Build the WSGI app. With no arguments, configuration comes from `CODER_*` / `CODERAPI_*`
    environment variables (and the YAML file they name) and the Store from that configuration."""
    settings = settings or Settings.from_environ()
    values = values if values is not None else load((), process_environ())
    if store is None:
        store = open_store(values, settings)
        store.migrate()

    app = CoderAPI("coderapi")
    app.config.update(PROVIDE_AUTOMATIC_OPTIONS=False, MAX_CONTENT_LENGTH=None)
    deployment_id = store.ensure_deployment_id()
    rt = Runtime(
        values=values,
        settings=settings,
        store=store,
        build=buildinfo.detect(settings.git_commit, settings.source_url),
        deployment_id=deployment_id,
        wire=WIRE_FORMS[settings.wire_format],
        auth=AuthConfig.from_values(values),
        limiter=ratelimit.from_values(values, settings, deployment_id),
        request_log=logs.RequestLog.from_values(values),
    )
    rt.answers = answers(rt)
    app.extensions[EXTENSION_KEY] = rt

    metrics.install(app, enabled=bool(values.effective.prometheus.enable), engine=store.engine)
    routes.mount(app, rt)
    # Background work starts last, on a complete app: stats at once, then every refresh interval.
    rt.stats = statscache.from_runtime(rt, lambda s: metrics.observe_stats_refresh(s, app))
    rt.update_checker = updatecheck.from_runtime(rt)
    return app


def answers(rt: Runtime) -> Answers:
    """The bodies that never change while the process runs, encoded once."""
    values, wire = rt.values, rt.wire
    webpush_key = webpush.announced_key(rt.store, values.experiments)
    doc, page = swagger.answers(rt.build.version, wire.name) if values.effective.swagger.enable else (None, None)
    return Answers(
        buildinfo=Prebuilt.of(encode(build_info_response(rt.build, values, rt.deployment_id, webpush_key))),
        deployment_config=Prebuilt.of(encode(values.deployment_config(wire.name))),
        ssh_config=Prebuilt.of(encode(values.ssh_config())),
        experiments=Prebuilt.of(encode(values.experiments)),
        experiments_available=Prebuilt.of(encode(wire.safe_experiments(EXPERIMENTS_SAFE))),
        swagger_doc=doc,
        swagger_page=page,
    )


def shutdown(app: Flask) -> None:
    """Stop the app's background services and release its database connections."""
    rt: Runtime = app.extensions[EXTENSION_KEY]
    rt.stats.stop()
    for service in (rt.update_checker, rt.limiter):
        if service is not None:
            service.stop()
    rt.request_log.close()
