"""`codersdk.BuildInfoResponse`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields

from coderapi.buildinfo import AGENT_API_VERSION, PROVISIONER_API_VERSION, Build

if TYPE_CHECKING:
    from coderapi.config import DeploymentValues


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

# coderd's defaults for the listeners (`coderapi.serving` binds the same).
DEFAULT_TLS_ADDRESS = "127.0.0.1:3443"


def dashboard_url(values: DeploymentValues) -> str:
    """Where users reach the dashboard: the access URL when set, otherwise the URL this server listens
    on, `http://<http-address>` or, when TLS is on (then the only listener), `https://<tls-address>`.
    Always absolute: coderd would open a dev tunnel without an access URL, which coderapi does not.
    An empty host (`:3000`) listens on every interface, written `0.0.0.0`."""
    access_url = str(values.effective.access_url)
    if access_url:
        return access_url
    if values.effective.tls.enable:
        scheme, address = "https", str(values.effective.tls.address) or DEFAULT_TLS_ADDRESS
    else:
        scheme, address = "http", str(values.effective.http_address)
    if address.startswith(":"):
        address = "0.0.0.0" + address
    return f"{scheme}://{address}"


def build_info_response(
    build: Build, values: DeploymentValues, deployment_id: str, webpush_public_key: str
) -> dict[str, Any]:
    """The body of GET /buildinfo, computed once at startup as coderd does."""
    body: dict[str, Any] = build_info_schema.dump(
        {
            "external_url": build.external_url,
            "version": build.version,
            "dashboard_url": dashboard_url(values),
            "telemetry": bool(values.effective.telemetry.enable),
            "workspace_proxy": False,
            "agent_api_version": AGENT_API_VERSION,
            "provisioner_api_version": PROVISIONER_API_VERSION,
            "upgrade_message": values.effective.cli_upgrade_message,
            "deployment_id": deployment_id,
            "webpush_public_key": webpush_public_key,
        }
    )
    return body
