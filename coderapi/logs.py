"""Logging as Coder's options configure it, and one log line per request.

Sinks (each a file path; empty turns it off): `logging.human` (default `/dev/stderr`), `logging.json`,
`logging.stackdriver`. `verbose` lowers the level to debug. `log_filter` is a list of regular
expressions: when set, debug is on but a debug entry is written only when its logger name or message
matches one of them (coder's `debugFilterSink`); entries at info and above always pass.

Request lines are written at info (coderd writes them at debug; an operator wants access logs without
`--verbose`), 5xx at warn. They carry request id, method, path, status, duration, user id and client IP,
never a header, a cookie or a token: query parameters that may hold a secret are redacted.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Sequence
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode

from flask import Flask, Response, g, request

LOGGER_NAME = "coderapi"
REQUEST_LOGGER_NAME = "coderapi.http"
START_KEY = "coderapi.start"
REDACTED = "REDACTED"

# Query parameters that can carry a credential; their values never reach a log.
SECRET_QUERY_KEYS = frozenset(
    {"coder_session_token", "access_token", "refresh_token", "token", "api_key", "client_secret", "password", "code"}
)

# The attribute a handler names in `extra=` to attach structured fields to an entry.
FIELDS_ATTR = "fields"

_STD_STREAMS = {"/dev/stderr": "stderr", "/dev/stdout": "stdout"}


class LogConfigError(ValueError):
    """A log option cannot be used (bad regular expression, unwritable file)."""


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, FIELDS_ATTR, None)
    return dict(fields) if isinstance(fields, dict) else {}


def _rfc3339(created: float) -> str:
    return (
        datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def _error_text(record: logging.LogRecord, fmt: logging.Formatter) -> str:
    if record.exc_info:
        return fmt.formatException(record.exc_info)
    return ""


class HumanFormatter(logging.Formatter):
    """`2026-01-19 10:00:00.123 [info]  coderapi.http: GET /api/v2/buildinfo  status=200 …` (slog's human
    sink, without colour)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        stamp = ts.strftime("%Y-%m-%d %H:%M:%S.") + f"{ts.microsecond // 1000:03d}"
        level = record.levelname.lower()
        if level == "warning":
            level = "warn"
        line = f"{stamp} [{level}]  {record.name}: {record.getMessage()}"
        fields = _fields(record)
        if fields:
            line += "  " + " ".join(f"{k}={_human_value(v)}" for k, v in fields.items())
        err = _error_text(record, self)
        if err:
            line += "\n" + err
        return line


def _human_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


class JSONFormatter(logging.Formatter):
    """One JSON object per line, as slog's JSON sink writes it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _rfc3339(record.created),
            "level": _slog_level(record),
            "msg": record.getMessage(),
            "caller": f"{record.pathname}:{record.lineno}",
            "func": record.funcName,
            "logger_names": record.name.split("."),
        }
        fields = _fields(record)
        err = _error_text(record, self)
        if err:
            fields["error"] = err
        if fields:
            entry["fields"] = fields
        return json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))


class StackdriverFormatter(logging.Formatter):
    """One JSON object per line in Google Cloud Logging's structured form."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": "WARNING" if record.levelno == logging.WARNING else _slog_level(record),
            "message": record.getMessage(),
            "timestamp": _rfc3339(record.created),
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            },
            "logName": record.name,
        }
        fields = _fields(record)
        err = _error_text(record, self)
        if err:
            fields["error"] = err
        entry.update(fields)
        return json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))


def _slog_level(record: logging.LogRecord) -> str:
    if record.levelno >= logging.CRITICAL:
        return "FATAL"
    if record.levelno >= logging.ERROR:
        return "ERROR"
    if record.levelno >= logging.WARNING:
        return "WARN"
    if record.levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


class DebugFilter(logging.Filter):
    """coder's `debugFilterSink`: debug entries pass only when the logger name or the message matches."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        super().__init__()
        self.patterns = tuple(patterns)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            return True
        msg = record.getMessage()
        return any(p.search(record.name) or p.search(msg) for p in self.patterns)


class _OwnedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler installed by `configure`, so a later `configure` can take it off again."""


class _StdHandler(_OwnedHandler):
    """Writes to whatever `sys.stderr`/`sys.stdout` is at the time of the entry (test runners and
    gunicorn replace them)."""

    def __init__(self, name: str) -> None:
        super().__init__(getattr(sys, name))
        self.std_name = name

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = getattr(sys, self.std_name)
        super().emit(record)


def _stream_handler(path: str) -> logging.Handler:
    std = _STD_STREAMS.get(path)
    if std is not None:
        return _StdHandler(std)
    try:
        stream: IO[str] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by the handler)
    except OSError as err:
        raise LogConfigError(f"open log file {path!r}: {err.strerror}") from None
    return _OwnedHandler(stream)


def compile_filters(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    out = []
    for pattern in patterns:
        try:
            out.append(re.compile(pattern))
        except re.error as err:
            raise LogConfigError(f"compile log filter {pattern!r}: {err}") from None
    return out


def configure(
    *,
    human: str = "/dev/stderr",
    json_path: str = "",
    stackdriver: str = "",
    verbose: bool = False,
    log_filter: Sequence[str] = (),
) -> logging.Logger:
    """(Re)configure the `coderapi` logger tree; returns it. Handlers from an earlier call are closed.

    Raises LogConfigError for a bad filter expression or a file that cannot be opened."""
    patterns = compile_filters(log_filter)
    handlers: list[logging.Handler] = []
    try:
        for path, formatter in (
            (human, HumanFormatter()),
            (json_path, JSONFormatter()),
            (stackdriver, StackdriverFormatter()),
        ):
            if not path:
                continue
            handler = _stream_handler(path)
            handler.setFormatter(formatter)
            if patterns:
                handler.addFilter(DebugFilter(patterns))
            handlers.append(handler)
    except LogConfigError:
        for h in handlers:
            _close(h)
        raise
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        if isinstance(old, _OwnedHandler):
            logger.removeHandler(old)
            _close(old)
    for h in handlers:
        logger.addHandler(h)
    logger.setLevel(logging.DEBUG if verbose or patterns else logging.INFO)
    return logger


def _close(handler: logging.Handler) -> None:
    handler.close()
    if not isinstance(handler, _StdHandler):
        stream = getattr(handler, "stream", None)
        if stream is not None:
            stream.close()


def configure_from_values(values: Any) -> logging.Logger:
    """`configure` with the deployment's options (`logging.*`, `verbose`, `logging.log_filter`)."""
    return configure(
        human=values.get("logging.human") or "",
        json_path=values.get("logging.json") or "",
        stackdriver=values.get("logging.stackdriver") or "",
        verbose=bool(values.get("verbose")),
        log_filter=list(values.get("logging.log_filter") or ()),
    )


def scrub_query(query: str) -> str:
    """The query string with every credential-bearing parameter's value replaced by `REDACTED`."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REDACTED if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs])


def mark_start() -> None:
    """before_request (installed first): when the request started, for logs and metrics."""
    request.environ[START_KEY] = time.perf_counter()


def request_duration() -> float:
    """Seconds since `mark_start`; 0 when the hook did not run."""
    start = request.environ.get(START_KEY)
    return time.perf_counter() - start if start is not None else 0.0


def current_user_id() -> str:
    """The user the auth hook authenticated for this request, or "" (read defensively: the hook may be
    absent or may not have run)."""
    value = g.get("user_id")
    if value:
        return str(value)
    for name, attr in (("api_key", "user_id"), ("apikey", "user_id"), ("user", "id")):
        uid = getattr(g.get(name), attr, None)
        if uid:
            return str(uid)
    return ""


def log_request(resp: Response) -> Response:
    """after_request (installed first, so it runs last): one line per request."""
    logger = logging.getLogger(REQUEST_LOGGER_NAME)
    level = logging.WARNING if resp.status_code >= 500 else logging.INFO
    if not logger.isEnabledFor(level):
        return resp
    duration = request_duration()
    fields: dict[str, Any] = {
        "request_id": g.get("request_id", ""),
        "method": request.method,
        "path": request.path,
        "status": resp.status_code,
        "duration_ms": round(duration * 1000, 3),
        "user_id": current_user_id(),
        "client_ip": g.get("client_ip") or request.remote_addr or "",
    }
    query = request.query_string.decode("latin-1")
    if query:
        fields["query"] = scrub_query(query)
    logger.log(level, "%s %s", request.method, request.path, extra={FIELDS_ATTR: fields})
    return resp


def install(app: Flask) -> None:
    """Request timing and the per-request log line. Call before any other middleware is installed."""
    app.before_request(mark_start)
    app.after_request(log_request)
