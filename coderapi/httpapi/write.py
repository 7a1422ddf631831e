"""`write()`: the one way a JSON response leaves the service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response
from marshmallow import Schema

from coderapi.httpapi.jsonwire import encode

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def write(status: int, obj: Any, schema: Schema | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """Serialise `obj` (through `schema` when given) and answer it with `status`."""
    data = schema.dump(obj) if schema is not None else obj
    return raw(status, encode(data), headers)


def raw(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
    """Answer JSON bytes that were encoded earlier (bodies built once at startup)."""
    resp = Response(body, status=status, content_type=JSON_CONTENT_TYPE)
    if headers:
        resp.headers.update(headers)
    return resp
