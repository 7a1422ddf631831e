"""`write()`: the one way a JSON response leaves the service, and `Prebuilt` answers built once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Response
from marshmallow import Schema
from werkzeug.datastructures import Headers

from coderapi.httpapi.jsonwire import encode

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def write(status: int, obj: Any, schema: Schema | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """Serialise `obj` (through `schema` when given) and answer it with `status`."""
    data = schema.dump(obj) if schema is not None else obj
    return raw(status, encode(data), headers)


def raw(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
    """Answer JSON bytes that were encoded earlier."""
    resp = Response(body, status=status, content_type=JSON_CONTENT_TYPE)
    if headers:
        resp.headers.update(headers)
    return resp


@dataclass(frozen=True)
class Prebuilt:
    """A 200 answer whose bytes never change while the process runs: its body and header list, made
    once at startup. Each request gets a response of its own (`response()`), so whatever one request
    does to its response never reaches the next."""

    body: bytes
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, body: bytes, content_type: str = JSON_CONTENT_TYPE) -> Prebuilt:
        return cls(body, (("Content-Type", content_type), ("Content-Length", str(len(body)))))

    def response(self) -> Response:
        return PrebuiltResponse(self)


class PrebuiltResponse(Response):
    """A response from a `Prebuilt`: skips what werkzeug's constructor works out per call (the content
    type, the body's length), which the `Prebuilt` holds already. Runs for most requests."""

    def __init__(self, answer: Prebuilt) -> None:
        self.headers = Headers(answer.headers)
        self.status = 200
        self.direct_passthrough = False
        self._on_close = []
        self.response = [answer.body]
