"""Prometheus metrics (`prometheus.enable`), exported on their own port (`prometheus.address`).

Under gunicorn the server sets `PROMETHEUS_MULTIPROC_DIR` before any worker starts, so every worker
writes its samples to files there and the exporter (in the gunicorn master) sums them: counts are right
with any number of workers. Without that directory (tests, a single process) the app's own registry is
exported.

The pipeline feeds it: the root middleware calls `Metrics.observe_request` for every request Flask
answers (route, method, status, latency, rate-limit refusals, and the token check's refusals by the
reason the refusal carries). Other modules record the rest through the small functions at the bottom
(`csp_violation`, `observe_stats_refresh`); they do nothing when Prometheus is off, so call sites never
check.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app, has_app_context
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import start_wsgi_server
from sqlalchemy import Engine, event

EXTENSION_KEY = "coderapi.metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# coderd's API latency buckets (coderd/prometheusmetrics), in seconds.
LATENCY_BUCKETS = (0.001, 0.005, 0.010, 0.025, 0.050, 0.100, 0.500, 1.0, 5.0, 10.0, 30.0)
STATS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The route label of a request no route matched: keeps the label set bounded whatever paths clients send.
UNMATCHED_ROUTE = "unmatched"
# The method label: the methods of RFC 9110 and PATCH (what chi routes); any other token a client makes
# up counts as "other", so the label set stays bounded.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"})
OTHER_METHOD = "other"


class Metrics:
    """Every metric the service records, registered in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # A process-wide value class chosen when prometheus_client was imported would miss a
        # multiprocess directory set up later by the server; choose it again now.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.multiprocess = multiprocess_dir() != ""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=r)

        self.requests = counter(
            "coderd_api_requests_processed_total",
            "The total number of processed API requests, by route, method and status code.",
            "code",
            "method",
            "path",
        )
        self.latency = Histogram(
            "coderd_api_request_latencies_seconds",
            "Latency distribution of API requests in seconds, by route and method.",
            ["method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.concurrent = Gauge(
            "coderd_api_concurrent_requests",
            "The number of API requests being served right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.auth_failures = counter(
            "coderapi_auth_failures_total", "Requests refused by the session-token check, by reason.", "reason"
        )
        self.rate_limited = counter(
            "coderapi_rate_limited_requests_total", "Requests refused by the API rate limiter (429), by route.", "path"
        )
        self.csp_violations = counter(
            "coderapi_csp_violations_total",
            "Content-Security-Policy violation reports received, by violated directive.",
            "directive",
        )
        self.stats_refresh = Histogram(
            "coderapi_deployment_stats_refresh_seconds",
            "How long one refresh of the deployment stats took, in seconds.",
            buckets=STATS_BUCKETS,
            registry=r,
        )
        self.db_pool = Gauge(
            "coderapi_db_pool_connections",
            "Database connections of the pool, by state (open, in_use).",
            ["state"],
            registry=r,
            multiprocess_mode="livesum",
        )

    def watch_pool(self, engine: Engine) -> None:
        """Keep `coderapi_db_pool_connections` current from the engine's pool events: `in_use` is
        checked out by a request or service, `open` is every connection the pool holds."""
        in_use = self.db_pool.labels("in_use")
        opened = self.db_pool.labels("open")
        # Connections made before the metrics existed (migrations, the deployment id).
        pool: Any = engine.pool
        if hasattr(pool, "checkedout") and hasattr(pool, "checkedin"):
            in_use.set(pool.checkedout())
            opened.set(pool.checkedin() + pool.checkedout())
        event.listen(engine.pool, "checkout", lambda *_a: in_use.inc())
        event.listen(engine.pool, "checkin", lambda *_a: in_use.dec())
        event.listen(engine.pool, "connect", lambda *_a: opened.inc())
        event.listen(engine.pool, "close", lambda *_a: opened.dec())
        event.listen(engine.pool, "close_detached", lambda *_a: opened.dec())

    def observe_request(self, status: int, method: str, rule: str | None, seconds: float, refused: str) -> None:
        """Count one answered request: `rule` is the route Flask matched (None: none did), `refused`
        the token check's reason when it refused the request, else ""."""
        path = route_label(rule)
        method = method_label(method)
        self.requests.labels(code_label(status), method, path).inc()
        self.latency.labels(method, path).observe(seconds)
        if status == 429:
            # Only the /api/v2 rate limiter answers 429.
            self.rate_limited.labels(path).inc()
        elif refused:
            self.auth_failures.labels(refused).inc()

    def exposition_registry(self) -> CollectorRegistry:
        """What an exporter should serve: the sum over all worker processes in multiprocess mode, else
        this registry."""
        if not self.multiprocess:
            return self.registry
        return multiprocess_registry()


def multiprocess_dir() -> str:
    """The multiprocess directory the server set up, or "" (the variable is prometheus_client's own
    interface, read by the library too)."""
    return os.environ.get(MULTIPROC_ENV, "")


def multiprocess_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def prepare_multiprocess_dir(path: str) -> None:
    """Make `path` the multiprocess directory of this process and its children, emptied of samples left
    by an earlier run. Call before any worker starts."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's `child_exit` hook)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def route_label(rule: str | None) -> str:
    """Flask's `/users/<user>/keys` as chi writes routes, `/users/{user}/keys`."""
    if rule is None:
        return UNMATCHED_ROUTE
    out = []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].rsplit(":", 1)[-1] + "}"
        out.append(part)
    return "/".join(out)


def method_label(method: str) -> str:
    """`method` when it is a known HTTP method (case-sensitive, as methods are), else "other"."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def code_label(status: int) -> str:
    """The status code as text; a code outside 100-599 (none is sent today) counts as "other"."""
    return str(status) if 100 <= status <= 599 else "other"


def install(app: Flask, *, enabled: bool, engine: Engine | None = None) -> Metrics | None:
    """With `enabled`, create the app's metrics (fed by the request pipeline); otherwise record nothing."""
    if not enabled:
        return None
    m = Metrics()
    app.extensions[EXTENSION_KEY] = m
    if engine is not None:
        m.watch_pool(engine)
    return m


def _current() -> Metrics | None:
    if not has_app_context():
        return None
    m: Metrics | None = current_app.extensions.get(EXTENSION_KEY)
    return m


def of(app: Flask) -> Metrics | None:
    """The app's metrics, or None when Prometheus is off (for services running outside a request)."""
    m: Metrics | None = app.extensions.get(EXTENSION_KEY)
    return m


# CSP directive names (CSP level 3); a report naming anything else is counted as "other", so clients
# cannot grow the label set.
CSP_DIRECTIVES = frozenset(
    {
        "base-uri",
        "child-src",
        "connect-src",
        "default-src",
        "fenced-frame-src",
        "font-src",
        "form-action",
        "frame-ancestors",
        "frame-src",
        "img-src",
        "manifest-src",
        "media-src",
        "object-src",
        "prefetch-src",
        "report-to",
        "report-uri",
        "require-trusted-types-for",
        "sandbox",
        "script-src",
        "script-src-attr",
        "script-src-elem",
        "style-src",
        "style-src-attr",
        "style-src-elem",
        "trusted-types",
        "upgrade-insecure-requests",
        "worker-src",
    }
)


def csp_directive_label(directive: str) -> str:
    """`script-src 'self'` -> `script-src`; "unknown" when empty, "other" when not a CSP directive."""
    name = directive.strip().split(" ", 1)[0].lower() if directive.strip() else ""
    if not name:
        return "unknown"
    return name if name in CSP_DIRECTIVES else "other"


def csp_violation(directive: str) -> None:
    """Count one CSP violation report by its violated (or effective) directive."""
    m = _current()
    if m is not None:
        m.csp_violations.labels(csp_directive_label(directive)).inc()


def observe_stats_refresh(seconds: float, app: Flask) -> None:
    """Record how long a deployment-stats refresh of `app` took (it runs in a background thread, outside
    any app context)."""
    m = of(app)
    if m is not None:
        m.stats_refresh.observe(seconds)


class Exporter:
    """prometheus_client's exporter (`/metrics`, quiet, threaded) on its own address, in a daemon
    thread."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        self.server, self.thread = start_wsgi_server(port, addr=host or "0.0.0.0", registry=registry)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        # In a forked child the thread does not exist, and shutdown() would wait for it forever.
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=5)
        self.server.server_close()
