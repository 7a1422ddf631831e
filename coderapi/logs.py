"""Logging as Coder's options configure it, and one log line per request.

Sinks (each a file path; empty turns it off): `logging.human` (default `/dev/stderr`), `logging.json`,
`logging.stackdriver`. `verbose` lowers the level to debug. `log_filter` is a list of regular
expressions: when set, debug is on but a debug entry is written only when its logger name or message
matches one of them (coder's `debugFilterSink`); entries at info and above always pass.

The process's logging (handlers on the `coderapi` logger) is set up by the entry points with
`configure` / `configure_from_values`. Each app writes its request lines through its own `RequestLog`
(built from the same options): at info (coderd writes them at debug; an operator wants access logs
without `--verbose`), 5xx at warn, so every configuration writes them and no filter applies. They carry
request id, method, path, status, duration, user id and client IP, never a header, a cookie or a
token: query parameters that may hold a secret are redacted.

The request line goes straight to the app's sinks, rendered by the same formatters, without a
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
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from coderapi.goformat import rfc3339_micro
from coderapi.httpmw import environ as environ_keys

if TYPE_CHECKING:
    from coderapi.config import DeploymentValues

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


class EntryFormatter(logging.Formatter):
    """A formatter that renders an `Entry`; `format(record)` renders the record's entry."""

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


class HumanFormatter(EntryFormatter):
    """`2026-01-19 10:00:00.123 [info]  coderapi.http: GET /api/v2/buildinfo  status=200 …` (slog's human
    sink, without colour)."""

    # The date part of the last second rendered: it changes once a second, and request lines are
    # written far more often than that. One tuple, so threads never pair a second with another's text.
    _stamp: tuple[int, str] = (-1, "")

    def render(self, entry: Entry) -> str:
        created = entry.created
        second = int(created)
        stamped, stamp = self._stamp
        if second != stamped:
            stamp = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.")
            self._stamp = (second, stamp)
        levelno = entry.levelno
        level = _HUMAN_LEVELS.get(levelno) or logging.getLevelName(levelno).lower()
        line = f"{stamp}{int((created - second) * 1000):03d} [{level}]  {entry.name}: {entry.message}"
        if entry.fields:
            line += "  " + _human_fields(entry.fields)
        if entry.error:
            line += "\n" + entry.error
        return line


_HUMAN_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}
_NEEDS_QUOTES = re.compile(r'[\s"=]')


def _human_fields(fields: Mapping[str, Any]) -> str:
    """`key=value` pairs; strings quoted (as JSON) only when empty or holding space, `"` or `=`."""
    # A plain string, the common value, is written without a call: this runs for every request line.
    plain = _NEEDS_QUOTES.search
    return " ".join(
        [f"{k}={v if type(v) is str and v and plain(v) is None else _human_value(v)}" for k, v in fields.items()]
    )


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


class _StdSink:
    """`/dev/stderr` or `/dev/stdout`: whatever `sys.stderr`/`sys.stdout` is at the time of the line
    (test runners and gunicorn replace them)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.std_name = _STD_STREAMS[path]

    def __repr__(self) -> str:
        return f"<log sink {self.path}>"

    def write(self, line: str) -> None:
        stream = getattr(sys, self.std_name)
        stream.write(line + "\n")
        if self.std_name != "stderr":  # stderr is line-buffered; a redirected stdout is not
            stream.flush()

    def close(self) -> None:
        pass  # the process's own stream


class _FileSink:
    """A log file, line-buffered: each line reaches the file as it is written, without a flush."""

    def __init__(self, path: str, stream: IO[str]) -> None:
        self.path = path
        self.stream = stream

    def __repr__(self) -> str:
        return f"<log sink {self.path}>"

    def write(self, line: str) -> None:
        self.stream.write(line + "\n")

    def close(self) -> None:
        self.stream.close()


_Sink = _StdSink | _FileSink


def _open_sinks(human: str, json_path: str, stackdriver: str) -> list[tuple[_Sink, EntryFormatter]]:
    """A sink and its formatter for each path that is set. Raises LogConfigError for a file that cannot
    be opened (the ones opened before it are closed)."""
    sinks: list[tuple[_Sink, EntryFormatter]] = []
    for path, formatter in ((human, HumanFormatter), (json_path, JSONFormatter), (stackdriver, StackdriverFormatter)):
        if not path:
            continue
        try:
            sinks.append((_open_sink(path), formatter()))
        except LogConfigError:
            for sink, _ in sinks:
                sink.close()
            raise
    return sinks


def _open_sink(path: str) -> _Sink:
    if path in _STD_STREAMS:
        return _StdSink(path)
    try:
        stream: IO[str] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by the sink)
    except OSError as err:
        raise LogConfigError(f"open log file {path!r}: {err.strerror}") from None
    return _FileSink(path, stream)


def _sink_paths(values: DeploymentValues) -> tuple[str, str, str]:
    """The human, JSON and Stackdriver sink paths the deployment's options name."""
    sinks = values.effective.logging
    return sinks.human or "", sinks.json or "", sinks.stackdriver or ""


class _SinkHandler(logging.Handler):
    """A handler `configure` installed (so a later `configure` takes it off again), writing to its sink."""

    def __init__(self, sink: _Sink, formatter: EntryFormatter) -> None:
        super().__init__()
        self.sink = sink
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.write(self.format(record))
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 (logging's own contract: report, never raise)
            self.handleError(record)

    def close(self) -> None:
        super().close()
        self.sink.close()


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
    handlers = [_SinkHandler(sink, formatter) for sink, formatter in _open_sinks(human, json_path, stackdriver)]
    if patterns:
        for handler in handlers:
            handler.addFilter(DebugFilter(patterns))
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        if isinstance(old, _SinkHandler):
            logger.removeHandler(old)
            old.close()
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose or patterns else logging.INFO)
    return logger


def configure_from_values(values: DeploymentValues) -> logging.Logger:
    """`configure` with the deployment's options (`logging.*`, `verbose`, `logging.log_filter`)."""
    human, json_path, stackdriver = _sink_paths(values)
    return configure(
        human=human,
        json_path=json_path,
        stackdriver=stackdriver,
        verbose=bool(values.effective.verbose),
        log_filter=list(values.effective.logging.log_filter or ()),
    )


def scrub_query(query: str) -> str:
    """The query string with every credential-bearing parameter's value replaced by `REDACTED`."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REDACTED if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs])


def _wsgi_text(raw: str) -> str:
    # WSGI strings carry the request's bytes as latin-1; paths are UTF-8 on the wire.
    return raw if raw.isascii() else raw.encode("latin-1").decode("utf-8", "replace")


def request_entry(environ: Mapping[str, Any], status: int) -> Entry:
    """The log entry of a request the app answered with `status`: request id, method, path as sent,
    status, duration, user id, client IP, and the query with credentials redacted."""
    created = time.time()
    start = environ.get(environ_keys.START)
    method = environ.get("REQUEST_METHOD", "")
    path = _wsgi_text(environ.get(environ_keys.RAW_PATH) or environ.get("PATH_INFO") or "/")
    user = environ.get(environ_keys.USER)
    fields: dict[str, Any] = {
        "request_id": environ.get(environ_keys.REQUEST_ID, ""),
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round((time.perf_counter() - start) * 1000, 3) if start is not None else 0.0,
        "user_id": str(user.id) if user is not None else "",
        "client_ip": environ.get(environ_keys.CLIENT_IP) or environ.get("REMOTE_ADDR", ""),
    }
    query = environ.get("QUERY_STRING", "")
    if query:
        scrubbed = scrub_query(_wsgi_text(query))
        if scrubbed:
            fields["query"] = scrubbed
    level = logging.WARNING if status >= 500 else logging.INFO
    return Entry(created, level, REQUEST_LOGGER_NAME, f"{method} {path}", fields, __file__, 0, "log_request")


class RequestLog:
    """One app's request lines, written to sinks of its own (another app in the process has others)."""

    def __init__(self, sinks: Sequence[tuple[_Sink, EntryFormatter]]) -> None:
        self.sinks = tuple((sink, formatter, threading.Lock()) for sink, formatter in sinks)

    @classmethod
    def from_values(cls, values: DeploymentValues) -> RequestLog:
        """The sinks the deployment's `logging.*` options name. Raises LogConfigError for a file that
        cannot be opened."""
        return cls(_open_sinks(*_sink_paths(values)))

    def __call__(self, environ: Mapping[str, Any], status: int) -> None:
        """Write the line of a request the app answered with `status` (called by the root middleware)."""
        entry = request_entry(environ, status)
        for sink, formatter, lock in self.sinks:
            try:
                line = formatter.render(entry)
                with lock:
                    sink.write(line)
            except Exception:  # noqa: BLE001 (a failing sink must not fail the request)
                sys.stderr.write(f"coderapi: cannot write the request log line to {sink!r}\n")

    def close(self) -> None:
        """Close the sinks' files."""
        for sink, _, lock in self.sinks:
            with lock:
                sink.close()
