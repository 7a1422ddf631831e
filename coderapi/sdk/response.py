"""`codersdk.Response`: the envelope every error (and the API root) is written in.

`coderapi.httpapi.envelope()` builds the body; this schema describes it for the OpenAPI document.
"""

from __future__ import annotations

from marshmallow import Schema, fields


class ValidationError(Schema):
    field = fields.String(required=True)
    detail = fields.String(required=True)


class Response(Schema):
    """`detail` and `validations` are left out when empty, as coderd does."""

    message = fields.String(required=True)
    detail = fields.String()
    validations = fields.List(fields.Nested(ValidationError))
