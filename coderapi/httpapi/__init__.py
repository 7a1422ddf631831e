"""Writing responses: JSON bytes, the error envelope and the error handlers."""

from coderapi.httpapi.errors import APIError, envelope, forbidden, internal_error, resource_not_found
from coderapi.httpapi.write import JSON_CONTENT_TYPE, Prebuilt, raw, write

__all__ = [
    "JSON_CONTENT_TYPE",
    "APIError",
    "Prebuilt",
    "envelope",
    "forbidden",
    "internal_error",
    "raw",
    "resource_not_found",
    "write",
]
