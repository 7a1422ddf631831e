"""gunicorn workers whose protocol-level refusals use the API's error envelope.

gunicorn refuses a request it cannot parse (malformed request line, oversized or invalid headers,
broken chunked framing) before the app runs, with an HTML page. These workers answer the same status
with `{"message": ..., "detail": ...}` JSON instead, so every error a client sees has one shape. The
status codes stay gunicorn's (and Go net/http's, which coderd relies on): 400, 414, 431, 417, 501 for
a transfer coding it cannot decode; a failure of our own is a 500 without details.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker
from gunicorn.workers.sync import SyncWorker as _SyncWorker

from coderapi import apikey
from coderapi.httpapi.errors import BAD_REQUEST, FORBIDDEN, INTERNAL_SERVER_ERROR, envelope
from coderapi.httpapi.jsonwire import encode
from coderapi.logs import SECRET_QUERY_KEYS

URI_TOO_LONG = "Request line too long."
HEADERS_TOO_LARGE = "Request header fields too large."
EXPECTATION_FAILED = "Expectation failed."
NOT_IMPLEMENTED = "Transfer coding not implemented."


def _classes(*names: str) -> tuple[type[BaseException], ...]:
    # Some of gunicorn's exception classes are newer than the oldest gunicorn we support.
    return tuple(getattr(errors, name) for name in names if hasattr(errors, name))


# Our own failures (a response header the app got wrong, a configuration problem): 500, no details.
_INTERNAL = _classes("InvalidResponseHeader", "InvalidResponseHeaderName", "ConfigurationProblem")
# (exception classes, status, reason phrase, envelope message), first match wins.
_REFUSALS: tuple[tuple[tuple[type[BaseException], ...], int, str, str], ...] = (
    (_classes("LimitRequestLine"), 414, "URI Too Long", URI_TOO_LONG),
    (_classes("LimitRequestHeaders"), 431, "Request Header Fields Too Large", HEADERS_TOO_LARGE),
    (_classes("ExpectationFailed"), 417, "Expectation Failed", EXPECTATION_FAILED),
    (_classes("UnsupportedTransferCoding"), 501, "Not Implemented", NOT_IMPLEMENTED),
    ((*_classes("ForbiddenProxyRequest"), ssl.SSLError), 403, "Forbidden", FORBIDDEN),
    (
        _classes(
            "InvalidRequestLine",
            "InvalidRequestMethod",
            "InvalidHTTPVersion",
            "InvalidHeader",
            "InvalidHeaderName",
            "ObsoleteFolding",
            "InvalidProxyLine",
            "InvalidProxyHeader",
            "InvalidSchemeHeaders",
            "InvalidChunkSize",
            "ChunkMissingTerminator",
            "InvalidChunkExtension",
            "InvalidH2CPreface",
            "NoMoreData",
        ),
        400,
        "Bad Request",
        BAD_REQUEST,
    ),
)


# A credential-bearing query parameter inside gunicorn's quoted request line, up to the next parameter,
# space or quote: the line never reached the app, so the request logger's query scrubbing never saw it.
_SECRET_PARAM = re.compile(
    r"(?i)(?<![0-9A-Za-z_])(" + "|".join(map(re.escape, sorted(SECRET_QUERY_KEYS))) + r")=[^&\s'\"]*"
)


def scrubbed(text: object) -> str:
    """gunicorn's text for a refused request (which quotes the offending line) or its URI, with
    credential query parameters and everything shaped like a session token redacted: it goes to the log
    and the client."""
    return apikey.redact(_SECRET_PARAM.sub(rf"\1={apikey.REDACTED}", str(text)))


def refusal(exc: BaseException) -> tuple[int, str, dict[str, Any]]:
    """`(status, reason phrase, envelope)` for an error gunicorn raised while reading a request."""
    if not isinstance(exc, _INTERNAL):
        for classes, status, reason, message in _REFUSALS:
            if classes and isinstance(exc, classes):
                return status, reason, envelope(message, scrubbed(exc))
    return 500, "Internal Server Error", envelope(INTERNAL_SERVER_ERROR)


def response_bytes(status: int, reason: str, body: dict[str, Any]) -> bytes:
    data = encode(body)
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + data


class EnvelopeErrors:
    """Mixin for a gunicorn worker: `handle_error` writes the envelope instead of an HTML page."""

    log: Any

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, reason, body = refusal(exc)
        ip = addr[0] if isinstance(addr, tuple) and addr else ""
        if status != 500:
            self.log.warning("Invalid request from ip=%s: %s", ip, scrubbed(exc))
        else:
            uri = scrubbed(getattr(req, "uri", "(no URI read)"))
            self.log.exception("Error handling request %s", uri, exc_info=exc)
        try:
            util.write_nonblock(client, response_bytes(status, reason, body))
        except OSError:
            self.log.debug("Failed to send error message.")


class SyncWorker(EnvelopeErrors, _SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker with envelope refusals."""


class ThreadWorker(EnvelopeErrors, _ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with envelope refusals."""
