"""The OpenAPI (Swagger 2.0) document of the ten General operations, generated with apispec from the
marshmallow schemas in `coderapi.sdk`.

Served at `/swagger/doc.json` when `swagger.enable` is on (see `coderapi.routes.swagger`). Names follow
Coder's own document (`codersdk.BuildInfoResponse`, ...), so clients generated from either agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from coderapi.config.settings import WIRE_FORMAT_CODERD, WIRE_FORMAT_REFERENCE
from coderapi.sdk import buildinfo, deploymentconfig, experiments, response, ssh, stats, updatecheck, users

SECURITY_SCHEME = "CoderSessionToken"
BASE_PATH = "/api/v2"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    auth: bool
    # A schema class, "experiments" (an array of codersdk.Experiment) or None (no body).
    body: Any


def _operations(form: str = WIRE_FORMAT_REFERENCE) -> tuple[Operation, ...]:
    """The operations as the server answers them in wire form `form`."""
    coderd = form == WIRE_FORMAT_CODERD
    return (
        Operation("get", "/", "api-root-handler", "API root handler", "General", False, response.Response),
        Operation("get", "/buildinfo", "build-info", "Build info", "General", False, buildinfo.BuildInfoResponse),
        Operation(
            "post", "/csp/reports", "report-csp-violations", "Report CSP violations", "General", not coderd, None
        ),
        Operation(
            "get",
            "/deployment/config",
            "get-deployment-config",
            "Get deployment config",
            "General",
            True,
            deploymentconfig.deployment_config_schema(form),
        ),
        Operation("get", "/deployment/ssh", "ssh-config", "SSH Config", "General", True, ssh.SSHConfigResponse),
        Operation(
            "get",
            "/deployment/stats",
            "get-deployment-stats",
            "Get deployment stats",
            "General",
            True,
            stats.CoderdDeploymentStats if coderd else stats.DeploymentStats,
        ),
        Operation(
            "get", "/experiments", "get-enabled-experiments", "Get enabled experiments", "General", True, "experiments"
        ),
        Operation(
            "get",
            "/experiments/available",
            "get-safe-experiments",
            "Get safe experiments",
            "General",
            True,
            experiments.AvailableExperiments if coderd else "experiments",
        ),
        Operation(
            "get", "/updatecheck", "update-check", "Update check", "General", False, updatecheck.UpdateCheckResponse
        ),
        Operation(
            "get",
            "/users/{user}/keys/tokens/tokenconfig",
            "get-token-config",
            "Get token config",
            "General",
            True,
            users.TokenConfig,
        ),
    )


# Schema classes that get a named definition (the rest are inlined where they are used).
NAMED_SCHEMAS: dict[type[Schema], str] = {
    response.Response: "codersdk.Response",
    response.ValidationError: "codersdk.ValidationError",
    buildinfo.BuildInfoResponse: "codersdk.BuildInfoResponse",
    ssh.SSHConfigResponse: "codersdk.SSHConfigResponse",
    stats.DeploymentStats: "codersdk.DeploymentStats",
    stats.WorkspaceDeploymentStats: "codersdk.WorkspaceDeploymentStats",
    stats.SessionCountDeploymentStats: "codersdk.SessionCountDeploymentStats",
    stats.WorkspaceConnectionLatencyMS: "codersdk.WorkspaceConnectionLatencyMS",
    # The coderd form's spellings of the same types (one form per document, so the names do not clash).
    stats.CoderdDeploymentStats: "codersdk.DeploymentStats",
    stats.CoderdWorkspaceDeploymentStats: "codersdk.WorkspaceDeploymentStats",
    stats.CoderdWorkspaceConnectionLatencyMS: "codersdk.WorkspaceConnectionLatencyMS",
    experiments.AvailableExperiments: "codersdk.AvailableExperiments",
    updatecheck.UpdateCheckResponse: "codersdk.UpdateCheckResponse",
    users.TokenConfig: "codersdk.TokenConfig",
    deploymentconfig.Option: "serpent.Option",
    deploymentconfig.Group: "serpent.Group",
    deploymentconfig.URL: "serpent.URL",
    deploymentconfig.HostPort: "serpent.HostPort",
    deploymentconfig.Regexp: "serpent.Regexp",
}


def _resolver(schema: Any) -> str | None:
    cls = schema if isinstance(schema, type) else type(schema)
    for form in (WIRE_FORMAT_REFERENCE, WIRE_FORMAT_CODERD):
        if cls is deploymentconfig.deployment_config_schema(form):
            return "codersdk.DeploymentConfig"
        if cls is deploymentconfig.deployment_values_schema(form):
            return "codersdk.DeploymentValues"
    return NAMED_SCHEMAS.get(cls)


def build_spec(version: str, experiments: tuple[str, ...] = (), form: str = WIRE_FORMAT_REFERENCE) -> dict[str, Any]:
    """The document as a dict, describing the bytes the server sends in wire form `form`. `experiments`
    lists the experiment names `codersdk.Experiment` takes."""
    # A resolver may return None (inline the schema); apispec's annotation says str only.
    plugin = MarshmallowPlugin(schema_name_resolver=_resolver)  # type: ignore[arg-type]
    spec = APISpec(
        title="Coder API",
        version=version,
        openapi_version="2.0",
        plugins=[plugin],
        info={
            "description": "Coderd is the service created by running coder server. This document covers the "
            "General section of its API, as served by coderapi.",
            "license": {"name": "AGPL-3.0", "url": "https://github.com/coder/coder/blob/main/LICENSE"},
        },
        basePath=BASE_PATH,
        securityDefinitions={SECURITY_SCHEME: {"type": "apiKey", "in": "header", "name": "Coder-Session-Token"}},
    )
    plugin.map_to_openapi_type(stats.GoTime, "string", "date-time")  # type: ignore[no-untyped-call]
    plugin.map_to_openapi_type(stats.GoFloat64, "number", None)  # type: ignore[no-untyped-call]
    experiment: dict[str, Any] = {"type": "string"}
    if experiments:
        experiment["enum"] = list(experiments)
    spec.components.schema("codersdk.Experiment", experiment)
    for op in _operations(form):
        spec.path(path=op.path, operations={op.method: _operation(op)})
    return spec.to_dict()


def _operation(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if op.body == "experiments":
        ok["schema"] = {"type": "array", "items": {"$ref": "#/definitions/codersdk.Experiment"}}
    elif op.body is not None:
        ok["schema"] = op.body
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "produces": ["application/json"],
        "responses": {"200": ok},
    }
    if op.path.startswith("/users/{user}"):
        out["parameters"] = [
            {
                "type": "string",
                "description": "User ID, username, or me",
                "name": "user",
                "in": "path",
                "required": True,
            }
        ]
    if op.method == "post":
        out["consumes"] = ["application/json"]
    if op.auth:
        out["security"] = [{SECURITY_SCHEME: []}]
    return out


def operations(form: str = WIRE_FORMAT_REFERENCE) -> list[tuple[str, str, str, bool]]:
    """(method, path under /api/v2, summary, needs a token) of every documented operation."""
    return [(op.method.upper(), op.path, op.summary, op.auth) for op in _operations(form)]
