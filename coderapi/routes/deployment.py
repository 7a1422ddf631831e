"""GET /api/v2/deployment/*: the deployment's configuration, as coderd's deployment routes (session token).

Both bodies are built once at startup (`create_app`); the handlers only authorize and answer them.
"""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi.httpapi import APIError, raw
from coderapi.httpmw.authz import authorize
from coderapi.runtime import runtime

bp = Blueprint("deployment", __name__, url_prefix="/api/v2/deployment")


@bp.get("/config")
def deployment_values() -> Response:
    """`codersdk.DeploymentConfig`, secrets removed. Owner and auditor only. Aborts: 403."""
    authorize("read", "deployment_config")
    return runtime().answers.deployment_config.response()


@bp.get("/ssh")
def ssh_config() -> Response:
    """`codersdk.SSHConfigResponse`, for any signed-in user."""
    return runtime().answers.ssh_config.response()


DEPLOYMENT_STATS_PROCESSING = "Deployment stats are still processing!"


@bp.get("/stats")
def deployment_stats() -> Response:
    """`codersdk.DeploymentStats` from the cache; nothing is computed per request. Owner and auditor
    only. Aborts: 403; 400 before the first computation has finished."""
    authorize("read", "deployment_stats")
    cache = runtime().stats
    body = cache.body()
    if body is None:
        raise APIError(400, DEPLOYMENT_STATS_PROCESSING)
    return raw(200, body)
