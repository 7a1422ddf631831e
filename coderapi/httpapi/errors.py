"""The error envelope (`codersdk.Response`) and the canned errors coderd answers with.

Message strings are constants so a conformance fix is one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROUTE_NOT_FOUND = "Route not found."
METHOD_NOT_ALLOWED = "Method not allowed."
INTERNAL_SERVER_ERROR = "An internal server error occurred."
RESOURCE_NOT_FOUND = "Resource not found or you do not have access to this resource"
FORBIDDEN = "Forbidden."
FORBIDDEN_DETAIL = (
    "You don't have permission to view this content. If you believe this is a mistake, please contact "
    "your administrator or try signing in with different credentials."
)
REQUEST_TOO_LARGE = "Request body too large."
BAD_REQUEST = "Bad request."


def envelope(message: str, detail: str = "", validations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A `codersdk.Response` body: `detail` and `validations` left out when empty, as coderd does."""
    body: dict[str, Any] = {"message": message}
    if detail:
        body["detail"] = detail
    if validations:
        body["validations"] = [{"field": v["field"], "detail": v["detail"]} for v in validations]
    return body


class APIError(Exception):
    """Raised anywhere during a request; the app's error handler writes it as the envelope. `reason`
    names a refusal of the token check (a metric label); "" for every other error."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        validations: list[dict[str, str]] | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})
        self.validations = validations
        self.reason = reason

    def body(self) -> dict[str, Any]:
        return envelope(self.message, self.detail, self.validations)


def forbidden() -> APIError:
    """coderd's `httpapi.Forbidden`: 403 with the standard body and no WWW-Authenticate."""
    return APIError(403, FORBIDDEN, FORBIDDEN_DETAIL)


def resource_not_found() -> APIError:
    return APIError(404, RESOURCE_NOT_FOUND)


def internal_error(detail: str = "") -> APIError:
    return APIError(500, INTERNAL_SERVER_ERROR, detail)
