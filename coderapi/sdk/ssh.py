"""`codersdk.SSHConfigResponse`: the body of GET /deployment/ssh (built by the config loader)."""

from __future__ import annotations

from marshmallow import Schema, fields


class SSHConfigResponse(Schema):
    hostname_prefix = fields.String(required=True)
    hostname_suffix = fields.String(required=True)
    ssh_config_options = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
