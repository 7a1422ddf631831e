"""`codersdk.UpdateCheckResponse`: the body of GET /updatecheck."""

from __future__ import annotations

from marshmallow import Schema, fields


class UpdateCheckResponse(Schema):
    """Fields in coderd's declaration order."""

    current = fields.Boolean(required=True)
    version = fields.String(required=True)
    url = fields.String(required=True)


update_check_schema = UpdateCheckResponse()
