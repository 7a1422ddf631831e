"""GET /api/v2/deployment/*: the deployment's configuration, as coderd's deployment routes (session token).

Both bodies are built once at startup (`create_app`); the handlers only authorize and answer them.
"""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi import rbac
from coderapi.httpapi import raw
from coderapi.runtime import runtime

bp = Blueprint("deployment", __name__, url_prefix="/api/v2/deployment")


@bp.get("/config")
def deployment_values() -> Response:
    """`codersdk.DeploymentConfig`, secrets removed. Owner and auditor only. Aborts: 403."""
    rbac.authorize("read", "deployment_config")
    return raw(200, runtime().bodies["deployment_config"])


@bp.get("/ssh")
def ssh_config() -> Response:
    """`codersdk.SSHConfigResponse`, for any signed-in user."""
    return raw(200, runtime().bodies["ssh_config"])
