"""Error handlers: every error, werkzeug's 404/405 and unhandled 500s included, becomes the envelope."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from coderapi.httpapi.errors import (
    BAD_REQUEST,
    INTERNAL_SERVER_ERROR,
    METHOD_NOT_ALLOWED,
    REQUEST_TOO_LARGE,
    ROUTE_NOT_FOUND,
    APIError,
    envelope,
)
from coderapi.httpapi.write import write

# Methods werkzeug adds to every GET rule on its own; coderd (chi) serves neither, so they are not
# advertised in `Allow` and requests using them get 405.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})


def allowed_methods(valid: object) -> list[str]:
    return sorted(m for m in (valid or ()) if m not in IMPLICIT_METHODS)  # type: ignore[attr-defined]


def handle_api_error(err: APIError) -> Response:
    return write(err.status, err.body(), headers=err.headers)


def handle_http_exception(err: HTTPException) -> Response:
    if isinstance(err, NotFound):
        return write(404, envelope(ROUTE_NOT_FOUND))
    if isinstance(err, MethodNotAllowed):
        allow = allowed_methods(err.valid_methods)
        headers = {"Allow": ", ".join(allow)} if allow else {}
        return write(405, envelope(METHOD_NOT_ALLOWED), headers=headers)
    if isinstance(err, RequestEntityTooLarge):
        return write(413, envelope(REQUEST_TOO_LARGE))
    status = err.code or 500
    if status >= 500:
        return write(status, envelope(INTERNAL_SERVER_ERROR))
    return write(status, envelope(BAD_REQUEST, err.description or ""))


def handle_unexpected(err: Exception) -> Response:
    # The traceback goes to the log, never to the client (coderd's httpmw.Recover).
    from flask import current_app

    current_app.logger.error("panic serving %s %s", request.method, request.path, exc_info=err)
    return write(500, envelope(INTERNAL_SERVER_ERROR))


def register(app: Flask) -> None:
    app.register_error_handler(APIError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
