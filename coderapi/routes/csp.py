"""POST /api/v2/csp/reports: browsers' Content-Security-Policy violation reports (session token)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from coderapi import apikey, metrics
from coderapi.httpapi import APIError, raw
from coderapi.httpapi.errors import REQUEST_TOO_LARGE
from coderapi.httpapi.jsonwire import dumps, encode
from coderapi.runtime import runtime
from coderapi.sdk.csp import GoJSONError, decode_violation

bp = Blueprint("csp", __name__, url_prefix="/api/v2/csp")
log = logging.getLogger("coderapi.csp")

# Reports are small; anything bigger is refused before it is parsed.
MAX_REPORT_BYTES = 64 * 1024
INVALID_JSON_MESSAGE = "Failed to read body, invalid json."
LOG_MESSAGE = "CSP violation reported"
OK_BODY = encode("ok")


def _read_body() -> bytes:
    """The request body, at most MAX_REPORT_BYTES. Aborts: 413 when it is longer; 400 when it cannot
    be read (malformed chunked framing, the client going away mid-body), as coderd's decoder reports
    the read error."""
    if request.content_length is not None and request.content_length > MAX_REPORT_BYTES:
        raise APIError(413, REQUEST_TOO_LARGE)
    try:
        body = request.stream.read(MAX_REPORT_BYTES + 1)
    except runtime().body_read_errors as err:
        log.warning("%s error=%s", LOG_MESSAGE, err)
        raise APIError(400, INVALID_JSON_MESSAGE, str(err)) from None
    if len(body) > MAX_REPORT_BYTES:
        raise APIError(413, REQUEST_TOO_LARGE)
    return body


@bp.post("/reports")
def log_report_csp_violations() -> Response:
    """Log the report at debug level, one field per key. Any Content-Type is accepted (browsers send
    `application/csp-report`)."""
    body = _read_body()
    try:
        report = decode_violation(body)
    except GoJSONError as err:
        log.warning("%s error=%s", LOG_MESSAGE, err)
        raise APIError(400, INVALID_JSON_MESSAGE, str(err)) from None
    if log.isEnabledFor(logging.DEBUG):
        # Report URLs can carry a session token in their query; scrub before logging.
        fields = " ".join(f"{key}={apikey.redact(dumps(value))}" for key, value in report.items())
        log.debug("%s %s", LOG_MESSAGE, apikey.redact(fields))
    metrics.csp_violation(_directive(report))
    return raw(200, OK_BODY)


def _directive(report: dict[str, object]) -> str:
    """The directive a report names: CSP Level 3's `effective-directive`, else `violated-directive`."""
    for key in ("effective-directive", "violated-directive"):
        value = report.get(key)
        if isinstance(value, str) and value:
            return value
    return ""
