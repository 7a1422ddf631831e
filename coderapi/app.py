"""`create_app`: the only place an app is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from coderapi import buildinfo, httpmw, logs, metrics, routes
from coderapi.config import DeploymentValues, load
from coderapi.config.experiments import EXPERIMENTS_SAFE
from coderapi.config.settings import Settings, process_environ
from coderapi.database import Store
from coderapi.httpapi import handlers
from coderapi.httpapi.jsonwire import encode
from coderapi.runtime import EXTENSION_KEY, Runtime
from coderapi.sdk.buildinfo import build_info_response
from coderapi.sdk.wireform import WIRE_FORMS
from coderapi.services import statscache, updatecheck


class CoderAPI(Flask):
    """The service's Flask app. Every view and hook is synchronous, so Flask's per-call check for
    coroutine functions (run for each hook of each request) is skipped."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def open_store(values: DeploymentValues, settings: Settings) -> Store:
    """The Store the configuration points at: PostgreSQL when `pg_connection_url` is set, else the
    embedded SQLite file in the data directory."""
    pg_url = values.get("pg_connection_url")
    if pg_url:
        max_open = values.get("pg_conn_max_open") or 10
        return Store(
            pg_url,
            pool_size=max(1, min(max_open, 10)),
            max_overflow=max(0, max_open - 10),
            token_cache=settings.token_cache,
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store("sqlite:///" + str(settings.sqlite_path))


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
    build = buildinfo.detect(settings.git_commit, settings.source_url)
    wire = WIRE_FORMS[settings.wire_format]
    deployment_id = store.ensure_deployment_id()
    rt = Runtime(values=values, settings=settings, store=store, build=build, deployment_id=deployment_id, wire=wire)
    rt.bodies["buildinfo"] = encode(build_info_response(rt))
    rt.bodies["deployment_config"] = encode(values.deployment_config(wire.name))
    rt.bodies["ssh_config"] = encode(values.ssh_config())
    rt.bodies["experiments"] = encode(values.experiments)
    rt.bodies["experiments_available"] = encode(wire.safe_experiments(EXPERIMENTS_SAFE))
    app.extensions[EXTENSION_KEY] = rt

    handlers.register(app)
    logs.configure_from_values(values)
    metrics.install(app, enabled=bool(values.get("prometheus.enable")), engine=store.engine)
    httpmw.install(app)
    routes.register(app)
    # Background work starts last, on a complete app: stats at once, then every refresh interval.
    rt.services["deployment_stats"] = statscache.from_runtime(rt, lambda s: metrics.observe_stats_refresh(s, app))
    checker = updatecheck.from_runtime(rt)
    if checker is not None:
        rt.services["update_checker"] = checker
    return app


def shutdown(app: Flask) -> None:
    """Stop the app's background services and release its database connections."""
    rt: Runtime = app.extensions[EXTENSION_KEY]
    for service in rt.services.values():
        stop = getattr(service, "stop", None)
        if stop is not None:
            stop()
