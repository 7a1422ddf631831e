"""`codersdk.BuildInfoResponse`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields

from coderapi.buildinfo import AGENT_API_VERSION, PROVISIONER_API_VERSION

if TYPE_CHECKING:
    from coderapi.runtime import Runtime


class BuildInfoResponse(Schema):
    external_url = fields.String(required=True)
    version = fields.String(required=True)
    dashboard_url = fields.String(required=True)
    telemetry = fields.Boolean(required=True)
    workspace_proxy = fields.Boolean(required=True)
    agent_api_version = fields.String(required=True)
    provisioner_api_version = fields.String(required=True)
    upgrade_message = fields.String(required=True)
    deployment_id = fields.String(required=True)
    webpush_public_key = fields.String(required=True)


build_info_schema = BuildInfoResponse()


def build_info_response(rt: Runtime) -> dict[str, Any]:
    """The body of GET /buildinfo, computed once at startup as coderd does."""
    values = rt.values
    from coderapi.services.webpush import public_key

    body: dict[str, Any] = build_info_schema.dump(
        {
            "external_url": rt.build.external_url,
            "version": rt.build.version,
            "dashboard_url": str(values.get("access_url")),
            "telemetry": bool(values.get("telemetry.enable")),
            "workspace_proxy": False,
            "agent_api_version": AGENT_API_VERSION,
            "provisioner_api_version": PROVISIONER_API_VERSION,
            "upgrade_message": values.get("cli_upgrade_message"),
            "deployment_id": rt.deployment_id,
            "webpush_public_key": public_key(rt.store) if "web-push" in values.experiments else "",
        }
    )
    return body
