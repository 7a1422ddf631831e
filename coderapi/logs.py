"""Logging as Coder's options configure it, and one log line per request.

Sinks (each a file path; empty turns it off): `logging.human` (default `/dev/stderr`), `logging.json`,
`logging.stackdriver`. `verbose` lowers the level to debug. `log_filter` is a list of regular
expressions: when set, debug is on but a debug entry is written only when its logger name or message
matches one of them (coder's `debugFilterSink`); entries at info and above always pass.

Request lines are written at info (coderd writes them at debug; an operator wants access logs without
`--verbose`), 5xx at warn. They carry request id, method, path, status, duration, user id and client IP,
never a header, a cookie or a token: query parameters that may hold a secret are redacted.

The request line goes straight to the configured sinks, rendered by the same formatters, without a
LogRecord and the logger's handler chain: that chain was the costliest single step of a request
(about 16 of a buildinfo request's 65 us in-process). It is therefore not seen by handlers added to
the `coderapi.http` logger or its parents by others (pytest's caplog, say); every other entry is.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from flask import request

from coderapi.goformat import rfc3339_micro
from coderapi.httpmw import environ as environ_keys

LOGGER_NAME = "coderapi"
REQUEST_LOGGER_NAME = "coderapi.http"
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


class Entry(NamedTuple):
    """What a sink writes of one log entry: a LogRecord's parts, or a request line's."""

    created: float  # time.time()
    levelno: int
    name: str  # logger name
    message: str
    fields: Mapping[str, Any] | None = None
    pathname: str = ""
    lineno: int = 0
    func: str = ""
    error: str = ""  # formatted exception, if any


class RequestLine(NamedTuple):
    """The request line's values (see `log_request`); `query` is "" when the request had none."""

    created: float
    levelno: int
    method: str
    path: str
    status: int
    duration_ms: float
    request_id: str
    user_id: str
    client_ip: str
    query: str

    def entry(self) -> Entry:
        fields: dict[str, Any] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "user_id": self.user_id,
            "client_ip": self.client_ip,
        }
        if self.query:
            fields["query"] = self.query
        message = f"{self.method} {self.path}"
        return Entry(self.created, self.levelno, REQUEST_LOGGER_NAME, message, fields, __file__, 0, "log_request")


class EntryFormatter(logging.Formatter):
    """A formatter that renders an `Entry`; `format(record)` renders the record's entry, and
    `render_request` the request line (formatters may render that one faster, to the same text)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, FIELDS_ATTR, None)
        return self.render(
            Entry(
                record.created,
                record.levelno,
                record.name,
                record.getMessage(),
                fields if isinstance(fields, dict) else None,
                record.pathname,
                record.lineno,
                record.funcName,
                self.formatException(record.exc_info) if record.exc_info else "",
            )
        )

    def render(self, entry: Entry) -> str:
        raise NotImplementedError

    def render_request(self, line: RequestLine) -> str:
        return self.render(line.entry())


class HumanFormatter(EntryFormatter):
    """`2026-01-19 10:00:00.123 [info]  coderapi.http: GET /api/v2/buildinfo  status=200 …` (slog's human
    sink, without colour)."""

    _second = -1
    _stamp = ""

    def _head(self, created: float, levelno: int, name: str) -> str:
        # The date part changes once a second; request lines are written far more often than that.
        second = int(created)
        if second != self._second:
            self._stamp = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.")
            self._second = second
        millis = int((created - second) * 1000)
        level = _HUMAN_LEVELS.get(levelno) or logging.getLevelName(levelno).lower()
        return f"{self._stamp}{millis:03d} [{level}]  {name}: "

    def render(self, entry: Entry) -> str:
        line = self._head(entry.created, entry.levelno, entry.name) + entry.message
        if entry.fields:
            line += "  " + _human_fields(entry.fields)
        if entry.error:
            line += "\n" + entry.error
        return line

    def render_request(self, line: RequestLine) -> str:
        # The same text as render(line.entry()), in one step: this line is written for every request
        # (tests/test_logs.py compares the two).
        if line.query:
            return self.render(line.entry())
        text = _human_text
        return (
            f"{self._head(line.created, line.levelno, REQUEST_LOGGER_NAME)}{line.method} {line.path}  "
            f"request_id={text(line.request_id)} method={text(line.method)} path={text(line.path)} "
            f"status={line.status} duration_ms={line.duration_ms} user_id={text(line.user_id)} "
            f"client_ip={text(line.client_ip)}"
        )


_HUMAN_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}
_NEEDS_QUOTES = re.compile(r'[\s"=]')


def _human_fields(fields: Mapping[str, Any]) -> str:
    """`key=value` pairs; strings quoted (as JSON) only when empty or holding space, `"` or `=`."""
    return " ".join([f"{k}={_human_text(v) if type(v) is str else _human_value(v)}" for k, v in fields.items()])


def _human_text(value: str) -> str:
    return value if value and _NEEDS_QUOTES.search(value) is None else _human_value(value)


def _human_value(value: Any) -> str:
    kind = type(value)
    if kind is int or kind is float:
        return str(value)
    text = value if kind is str else str(value)
    if not text:
        return '""'
    if _NEEDS_QUOTES.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _fields_with_error(entry: Entry) -> dict[str, Any]:
    fields = dict(entry.fields or {})
    if entry.error:
        fields["error"] = entry.error
    return fields


class JSONFormatter(EntryFormatter):
    """One JSON object per line, as slog's JSON sink writes it."""

    def render(self, entry: Entry) -> str:
        out: dict[str, Any] = {
            "ts": rfc3339_micro(entry.created),
            "level": _slog_level(entry.levelno),
            "msg": entry.message,
            "caller": f"{entry.pathname}:{entry.lineno}",
            "func": entry.func,
            "logger_names": entry.name.split("."),
        }
        fields = _fields_with_error(entry)
        if fields:
            out["fields"] = fields
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


class StackdriverFormatter(EntryFormatter):
    """One JSON object per line in Google Cloud Logging's structured form."""

    def render(self, entry: Entry) -> str:
        out: dict[str, Any] = {
            "severity": "WARNING" if entry.levelno == logging.WARNING else _slog_level(entry.levelno),
            "message": entry.message,
            "timestamp": rfc3339_micro(entry.created),
            "logging.googleapis.com/sourceLocation": {
                "file": entry.pathname,
                "line": str(entry.lineno),
                "function": entry.func,
            },
            "logName": entry.name,
        }
        out.update(_fields_with_error(entry))
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


def _slog_level(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "FATAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
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
    """A sink installed by `configure` (so a later `configure` can take it off again), writing entries
    rendered by its EntryFormatter. Its file is line-buffered: each line reaches the file as it is
    written, without a separate flush."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 (logging's own contract: report, never raise)
            self.handleError(record)

    def write_request(self, request_line: RequestLine) -> None:
        """Write the request line, which does not come through a logger."""
        formatter: EntryFormatter = self.formatter  # type: ignore[assignment]
        line = formatter.render_request(request_line)
        with self.lock:  # type: ignore[union-attr]
            self.write_line(line)

    def write_line(self, line: str) -> None:
        self.stream.write(line + "\n")


class _StdHandler(_OwnedHandler):
    """Writes to whatever `sys.stderr`/`sys.stdout` is at the time of the entry (test runners and
    gunicorn replace them)."""

    def __init__(self, name: str) -> None:
        super().__init__(getattr(sys, name))
        self.std_name = name

    def write_line(self, line: str) -> None:
        self.stream = getattr(sys, self.std_name)
        self.stream.write(line + "\n")
        if self.std_name != "stderr":  # stderr is line-buffered; a redirected stdout is not
            self.stream.flush()


def _stream_handler(path: str) -> _OwnedHandler:
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
    handlers: list[_OwnedHandler] = []
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
    global _request_sinks
    _request_sinks = tuple(handlers)
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


def request_duration() -> float:
    """Seconds since the current request arrived; 0 when the root middleware is not installed."""
    start = request.environ.get(environ_keys.START)
    return time.perf_counter() - start if start is not None else 0.0


def _wsgi_text(raw: str) -> str:
    # WSGI strings carry the request's bytes as latin-1; paths are UTF-8 on the wire.
    return raw if raw.isascii() else raw.encode("latin-1").decode("utf-8", "replace")


def log_request(environ: dict[str, Any], status: int) -> None:
    """The request's line, written by the root middleware once the app has answered `status`: request
    id, method, path as sent, status, duration, user id, client IP, and the query with credentials
    redacted."""
    level = logging.WARNING if status >= 500 else logging.INFO
    if not _REQUEST_LOGGER.isEnabledFor(level):
        return
    start = environ.get(environ_keys.START)
    method = environ.get("REQUEST_METHOD", "")
    path = _wsgi_text(environ.get(environ_keys.RAW_PATH) or environ.get("PATH_INFO") or "/")
    user = environ.get(environ_keys.USER)
    query = environ.get("QUERY_STRING", "")
    line = RequestLine(
        time.time(),
        level,
        method,
        path,
        status,
        round((time.perf_counter() - start) * 1000, 3) if start is not None else 0.0,
        environ.get(environ_keys.REQUEST_ID, ""),
        str(user.id) if user is not None else "",
        environ.get(environ_keys.CLIENT_IP) or environ.get("REMOTE_ADDR", ""),
        scrub_query(_wsgi_text(query)) if query else "",
    )
    for sink in _request_sinks:
        try:
            sink.write_request(line)
        except Exception:  # noqa: BLE001 (a failing sink must not fail the request)
            sys.stderr.write(f"coderapi: cannot write the request log line to {sink!r}\n")


_REQUEST_LOGGER = logging.getLogger(REQUEST_LOGGER_NAME)
# The sinks `configure` installed, in the order it installed them.
_request_sinks: tuple[_OwnedHandler, ...] = ()
