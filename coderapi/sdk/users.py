"""`codersdk.TokenConfig` and the user / token shapes the admin CLI prints."""

from __future__ import annotations

from marshmallow import Schema, fields


class TokenConfig(Schema):
    # Integer nanoseconds, as Go encodes a time.Duration.
    max_token_lifetime = fields.Integer(required=True)


class User(Schema):
    """The parts of `codersdk.User` coderapi stores."""

    id = fields.UUID(required=True)
    username = fields.String(required=True)
    email = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    last_seen_at = fields.DateTime(allow_none=True)
    status = fields.String(required=True)
    login_type = fields.String(required=True)
    roles = fields.Function(lambda u: [{"name": r} for r in u.rbac_roles])


class APIKey(Schema):
    """`codersdk.APIKey` without anything secret."""

    id = fields.String(required=True)
    user_id = fields.UUID(required=True)
    token_name = fields.String(required=True)
    last_used = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    login_type = fields.String(required=True)
    lifetime_seconds = fields.Integer(required=True)
    scopes = fields.List(fields.String(), required=True)


token_config_schema = TokenConfig()
user_schema = User()
api_key_schema = APIKey()
