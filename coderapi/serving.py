"""Serving the app with gunicorn: options from the deployment's values and coderapi's settings.

`gunicorn_options()` is shared by `coderapi server` (`ServerApplication`) and `gunicorn.conf.py`, so
`gunicorn wsgi:app` runs with the same settings. Workers are not preloaded: each builds its own app
(and its own database pool and background services) after the fork.

- Bind: `http_address` (default 127.0.0.1:3000). With `tls.enable`, `tls.address` is bound with TLS
  instead (gunicorn applies one certificate to every listener, so plain HTTP is not served beside it).
- Workers: `CODERAPI_WORKERS` (default `2 × CPUs + 1`, at most 12), `CODERAPI_THREADS` (default 1:
  sync workers; above 1 the gthread worker), both answering requests gunicorn cannot parse in the
  error envelope (`coderapi.workers`).
- SIGTERM / SIGINT stop gracefully (requests in flight finish, up to 30 s); SIGHUP re-reads the
  configuration and replaces the workers.
- Request line and header fields up to 8190 bytes, at most 100 header fields.
- Listening beyond loopback without `proxy_trusted_origins` logs one warning at start: sync workers
  belong behind a buffering proxy (`exposure_warning`).
- `proxy_trusted_origins` is also gunicorn's `forwarded_allow_ips`, so only trusted proxies can set
  the scheme; the client IP itself is decided by `coderapi.httpmw.realip`.
- The node's rate-limit counters (`coderapi.httpmw.nodestore`) live in one directory the master makes
  before workers fork (`CODERAPI_RATE_LIMIT_DIR`, else a fresh one on tmpfs, removed on exit), so every
  worker counts against one budget.
- With `prometheus.enable`, the master serves `/metrics` on `prometheus.address`, summing every
  worker's samples (prometheus_client's multiprocess mode, in a directory the server manages).
"""

from __future__ import annotations

import dataclasses
import gc
import ipaddress
import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.errors import HaltServer
from gunicorn.http.errors import ParseException

from coderapi.config.settings import RATE_LIMIT_DIR_ENV, Settings

if TYPE_CHECKING:
    from coderapi.config import DeploymentValues

DEFAULT_HTTP_ADDRESS = "127.0.0.1:3000"
MAX_DEFAULT_WORKERS = 12
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190
GRACEFUL_TIMEOUT = 30
WORKER_TIMEOUT = 30
# How long a booting worker waits for the database (well inside WORKER_TIMEOUT, which would kill it).
BOOT_DATABASE_WAIT = 10.0

TLS_VERSIONS = {
    "tls10": ssl.TLSVersion.TLSv1,
    "tls11": ssl.TLSVersion.TLSv1_1,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "tls13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH = {
    "none": ssl.CERT_NONE,
    "request": ssl.CERT_OPTIONAL,
    "require-any": ssl.CERT_OPTIONAL,
    "verify-if-given": ssl.CERT_OPTIONAL,
    "require-and-verify": ssl.CERT_REQUIRED,
}


HOOK_NAMES = ("when_ready", "child_exit", "on_exit", "post_worker_init")


class ServingError(ValueError):
    """The serving options cannot work (no address, TLS without a certificate, …)."""


def default_workers(cpus: int | None = None) -> int:
    n = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, min(2 * n + 1, MAX_DEFAULT_WORKERS))


def host_port(value: Any) -> str:
    """`host:port` from a HostPort option, whatever form the loader gives it (string, object or dict)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Mapping):
        host, port = value.get("host", ""), value.get("port", "")
    else:
        host, port = getattr(value, "host", ""), getattr(value, "port", "")
    if not host and not port:
        return ""
    host = str(host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def split_host_port(address: str) -> tuple[str, int]:
    """`("127.0.0.1", 2112)` from `127.0.0.1:2112`; an empty host means every interface.

    Raises ServingError when the port is missing or not a number."""
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ServingError(f"address {address!r}: missing port")
    try:
        number = int(port, 10)
    except ValueError:
        raise ServingError(f"address {address!r}: invalid port") from None
    if not 0 <= number <= 65535:
        raise ServingError(f"address {address!r}: invalid port")
    return host.strip("[]"), number


def _bind_address(address: str) -> str:
    host, port = split_host_port(address)
    if ":" in host:
        host = f"[{host}]"
    return f"{host or '0.0.0.0'}:{port}"


@dataclass(frozen=True)
class TLSOptions:
    cert_file: str
    key_file: str
    client_ca_file: str = ""
    client_auth: str = "none"
    min_version: str = "tls12"


def tls_options(values: DeploymentValues) -> TLSOptions | None:
    """The TLS listener's settings when `tls.enable`, else None. Raises ServingError when unusable."""
    tls = values.effective.tls
    if not tls.enable:
        return None
    certs = list(tls.cert_file or ())
    keys = list(tls.key_file or ())
    if not certs or not keys:
        raise ServingError("tls-cert-file and tls-key-file are required when tls is enabled")
    if len(certs) != len(keys):
        raise ServingError("--tls-cert-file and --tls-key-file must be used the same amount of times")
    if len(certs) > 1:
        raise ServingError("only one TLS certificate is supported by this server")
    for path in (certs[0], keys[0]):
        if not os.path.isfile(path):
            raise ServingError(f"TLS file {path!r} does not exist")
    client_auth = (tls.client_auth or "none").lower()
    if client_auth not in CLIENT_AUTH:
        raise ServingError(f"TLS client auth {client_auth!r} is not one of {', '.join(CLIENT_AUTH)}")
    min_version = (tls.min_version or "tls12").lower()
    if min_version not in TLS_VERSIONS:
        raise ServingError(f"TLS minimum version {min_version!r} is not one of {', '.join(TLS_VERSIONS)}")
    return TLSOptions(certs[0], keys[0], tls.client_ca_file or "", client_auth, min_version)


def prometheus_address(values: DeploymentValues) -> str:
    """The exporter's `host:port` when `prometheus.enable`, else ""."""
    if not values.effective.prometheus.enable:
        return ""
    address = host_port(values.effective.prometheus.address) or "127.0.0.1:2112"
    split_host_port(address)
    return address


def listen_address(values: DeploymentValues, tls: TLSOptions | None) -> str:
    """The `host:port` the server binds. Raises ServingError when none is configured."""
    if tls is not None:
        address = host_port(values.effective.tls.address) or "127.0.0.1:3443"
    else:
        address = host_port(values.effective.http_address)
    if not address:
        raise ServingError("http-address or tls-address must be set")
    return address


EXPOSED_WARNING = (
    "listening on {address}, beyond loopback, without --proxy-trusted-origins: sync workers can be held "
    "by slow clients (slowloris), so a node reachable from untrusted networks needs a buffering reverse "
    "proxy in front of it (deploy/nginx)"
)


def exposure_warning(values: DeploymentValues) -> str:
    """The start-up warning for a server that listens beyond loopback without a trusted proxy, else "".

    A proxy in front is what `--proxy-trusted-origins` says; without it, each sync worker can be held by
    one client that sends its request slowly (gunicorn's guidance: sync workers behind a buffering proxy).
    Raises ServingError as `gunicorn_options` does."""
    if any(o.strip() for o in (values.effective.proxy.trusted_origins or ())):
        return ""
    address = listen_address(values, tls_options(values))
    host, _ = split_host_port(address)
    if host == "localhost":
        return ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False  # an empty host (every interface) or a name: reachable beyond this machine
    return "" if loopback else EXPOSED_WARNING.format(address=address)


def gunicorn_options(values: DeploymentValues, settings: Settings) -> dict[str, Any]:
    """gunicorn settings (names as in a gunicorn config file) for these values and settings.

    Raises ServingError when no listener is configured or TLS is unusable."""
    tls = tls_options(values)
    address = listen_address(values, tls)
    workers = settings.workers or default_workers()
    threads = max(1, settings.threads)
    origins = [o.strip() for o in (values.effective.proxy.trusted_origins or ()) if o.strip()]
    opts: dict[str, Any] = {
        "bind": [_bind_address(address)],
        "workers": workers,
        "threads": threads,
        # gunicorn's sync / gthread workers, answering unparseable requests in the error envelope.
        "worker_class": "coderapi.workers.ThreadWorker" if threads > 1 else "coderapi.workers.SyncWorker",
        "preload_app": False,
        "timeout": WORKER_TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 5,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "forwarded_allow_ips": ",".join(origins) if origins else "",
        "proc_name": "coderapi",
        # gunicorn 25+ opens a control socket at one path per user; several servers on one machine
        # (nodes, tests) would fight over it, and `coderapi server` is managed with signals.
        "control_socket_disable": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "debug" if values.effective.verbose else "info",
        # Our request lines carry the fields gunicorn's access log would, without the token risk.
        "disable_redirect_access_to_syslog": True,
        # The heartbeat file on tmpfs: a slow disk never makes the master think a worker hung.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,  # noqa: S108
    }
    if tls is not None:
        opts.update(
            certfile=tls.cert_file,
            keyfile=tls.key_file,
            cert_reqs=CLIENT_AUTH[tls.client_auth],
            ssl_context=_ssl_context_hook(tls),
        )
        if tls.client_ca_file:
            opts["ca_certs"] = tls.client_ca_file
    return opts


def _ssl_context_hook(tls: TLSOptions) -> Callable[[Any, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    def ssl_context(_conf: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        ctx = default_factory()
        ctx.minimum_version = TLS_VERSIONS[tls.min_version]
        return ctx

    return ssl_context


@dataclass
class MetricsExport:
    """The multiprocess directory and the master's exporter for one server run."""

    address: str
    directory: str = ""
    owns_directory: bool = False
    exporter: Any = None
    errors: list[str] = field(default_factory=list)

    def prepare(self, environ: Mapping[str, str]) -> None:
        """Set up the multiprocess directory (the operator's `PROMETHEUS_MULTIPROC_DIR`, else a fresh
        temporary one) before any worker starts."""
        from coderapi import metrics

        given = environ.get(metrics.MULTIPROC_ENV, "")
        if given:
            self.directory = given
        else:
            self.directory = tempfile.mkdtemp(prefix="coderapi-prometheus-")
            self.owns_directory = True
        metrics.prepare_multiprocess_dir(self.directory)

    def start(self) -> None:
        from coderapi import metrics

        host, port = split_host_port(self.address)
        self.exporter = metrics.Exporter(host, port, metrics.multiprocess_registry())

    def stop(self) -> None:
        if self.exporter is not None:
            self.exporter.stop()
            self.exporter = None
        if self.owns_directory and self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


_MASTER_EXPORT: list[MetricsExport] = []


def master_export(address: str, environ: Mapping[str, str]) -> MetricsExport | None:
    """The master's one MetricsExport, prepared on first use. gunicorn executes its config file again on
    SIGHUP; the exporter and its directory stay those of the first run (a new address needs a restart)."""
    if not address:
        return None
    if not _MASTER_EXPORT:
        export = MetricsExport(address)
        export.prepare(environ)
        _MASTER_EXPORT.append(export)
    return _MASTER_EXPORT[0]


@dataclass
class NodeCounters:
    """The rate-limit counter directory of one server run, shared by its workers."""

    directory: str = ""
    owns_directory: bool = False

    def prepare(self, settings: Settings) -> None:
        """Use the operator's `CODERAPI_RATE_LIMIT_DIR`, else make a fresh directory, before any worker
        starts; workers find it in their settings and in the environment (`gunicorn wsgi:app`)."""
        from coderapi.httpmw.nodestore import make_directory

        if settings.rate_limit_dir:
            self.directory = settings.rate_limit_dir
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        else:
            self.directory = make_directory()
            self.owns_directory = True
        os.environ[RATE_LIMIT_DIR_ENV] = self.directory

    def apply(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, rate_limit_dir=self.directory)

    def stop(self) -> None:
        if self.owns_directory and self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


_MASTER_COUNTERS: list[NodeCounters] = []


def master_counters(settings: Settings) -> NodeCounters:
    """The master's one NodeCounters, prepared on first use (kept across SIGHUP, like the exporter)."""
    if not _MASTER_COUNTERS:
        counters = NodeCounters()
        counters.prepare(settings)
        _MASTER_COUNTERS.append(counters)
    return _MASTER_COUNTERS[0]


def hooks(
    export: MetricsExport | None, counters: NodeCounters | None = None, warning: str = ""
) -> dict[str, Callable[..., None]]:
    """gunicorn server hooks: the master logs `warning` (once, when ready: not again on SIGHUP) and starts
    the exporter, dead workers' gauges are dropped, and everything is cleaned up on exit."""

    def when_ready(server: Any) -> None:
        if warning:
            server.log.warning(warning)
        if export is None or export.exporter is not None:
            return
        try:
            export.start()
        except (OSError, ServingError) as err:
            server.log.error("prometheus exporter on %s: %s", export.address, err)
            sys.exit(1)
        server.log.info("prometheus metrics on http://%s/metrics", export.address)

    def child_exit(_server: Any, worker: Any) -> None:
        if export is not None:
            from coderapi import metrics

            metrics.worker_exited(worker.pid)

    def on_exit(_server: Any) -> None:
        if export is not None:
            export.stop()
        if counters is not None:
            counters.stop()

    def post_worker_init(worker: Any) -> None:
        # Everything the app built at startup lives as long as the worker: keep it out of the
        # collector's generations, so full collections stop walking it on every request burst.
        gc.freeze()
        # gunicorn's chunked-body parser raises its own errors where the app reads a body (see Runtime).
        from coderapi.runtime import EXTENSION_KEY

        worker.wsgi.extensions[EXTENSION_KEY].body_read_errors = (OSError, ParseException)
        # gunicorn says when it starts a worker; this says when the worker can answer.
        worker.log.info("Worker ready (pid: %s)", worker.pid)

    return {
        "when_ready": when_ready,
        "child_exit": child_exit,
        "on_exit": on_exit,
        "post_worker_init": post_worker_init,
    }


def migrate(values: DeploymentValues, settings: Settings) -> None:
    """Apply pending migrations once, in the master, before workers start."""
    from coderapi.database.open import open_store

    store = open_store(values, settings)
    try:
        store.migrate()
    finally:
        store.close()


def run(values: DeploymentValues, resolve: Callable[[], Any], settings: Settings, environ: Mapping[str, str]) -> None:
    """Serve `values` until stopped; on SIGHUP `resolve()` gives the values to continue with.

    Raises ServingError before anything is bound."""
    options = gunicorn_options(values, settings)
    export = master_export(prometheus_address(values), environ)
    counters = master_counters(settings)
    options.update(hooks(export, counters, exposure_warning(values)))
    app = ServerApplication(values, counters.apply(settings), options, resolve)
    master = os.getpid()
    try:
        app.run()
    except HaltServer as halt:
        # gunicorn's halt() stops the other workers; when one of them also failed to boot, HaltServer is
        # raised again from inside halt() and escapes the arbiter. End as halt() would have: its status,
        # no traceback (the workers' own lines said why).
        raise SystemExit(halt.exit_status) from None
    finally:
        # Workers leave gunicorn through this frame too (SystemExit after the fork): only the master
        # owns the exporter and the directories.
        if os.getpid() == master:
            if export is not None:
                export.stop()
            counters.stop()


class ServerApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn's embedding API: options from the values; each worker builds its app with them."""

    def __init__(
        self, values: DeploymentValues, settings: Settings, options: dict[str, Any], resolve: Callable[[], Any]
    ) -> None:
        self.values = values
        self.settings = settings
        self.options = options
        self.resolve = resolve
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def reload(self) -> None:
        # SIGHUP: read the configuration again (flags, environment, YAML file). A configuration that
        # no longer loads keeps the running one, as a typo in the YAML file must not stop the service.
        try:
            values = self.resolve()
            options = gunicorn_options(values, self.settings)
        except ValueError as err:
            sys.stderr.write(f"reload: keeping the running configuration: {err}\n")
        else:
            hooks_now = {k: v for k, v in self.options.items() if k in HOOK_NAMES}
            self.values = values
            self.options = {**options, **hooks_now}
        super().reload()

    def load(self) -> Any:
        """Build the worker's app. A database that cannot be reached is waited for, up to
        BOOT_DATABASE_WAIT seconds, then the worker exits with an ordinary failure, which gunicorn
        answers by starting another: a worker (re)started during a database outage must not count as a
        boot error, which would stop the whole server, workers still serving the public routes included.
        A permission or read-only refusal is a boot error: one line, and gunicorn stops the server."""
        from gunicorn.arbiter import Arbiter
        from sqlalchemy.exc import OperationalError, SQLAlchemyError

        from coderapi import logs
        from coderapi.app import create_app
        from coderapi.database.engine import error_line, is_refusal

        # The worker's logging from the values it serves (new ones after SIGHUP), as the master's.
        logs.configure_from_values(self.values)
        deadline = time.monotonic() + BOOT_DATABASE_WAIT
        while True:
            try:
                return create_app(self.values, settings=self.settings)
            except (SQLAlchemyError, PermissionError) as err:
                if isinstance(err, PermissionError) or is_refusal(err):
                    # Waiting will not fix a permission or a read-only database, and every worker would
                    # meet it: gunicorn stops the server when a worker exits with its boot-error code.
                    reason = error_line(err)
                    sys.stderr.write(f"worker {os.getpid()}: the database refused the worker: {reason}\n")
                    sys.exit(Arbiter.WORKER_BOOT_ERROR)
                if not isinstance(err, OperationalError):
                    raise
                reason = error_line(err.orig or err)
                if time.monotonic() >= deadline:
                    sys.stderr.write(f"worker {os.getpid()}: database unavailable, exiting: {reason}\n")
                    sys.exit(1)
                sys.stderr.write(f"worker {os.getpid()}: database unavailable, retrying: {reason}\n")
                time.sleep(1.0)
