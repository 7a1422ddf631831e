"""GET /api/v2/experiments: the experiments this deployment turned on, and the safe ones (session token).

Both bodies are built once at startup (`create_app`).
"""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi.httpapi import raw
from coderapi.runtime import runtime

bp = Blueprint("experiments", __name__, url_prefix="/api/v2/experiments")


@bp.get("")
@bp.get("/")
def experiments_get() -> Response:
    """The configured experiments as coderd.ReadExperiments read them; `[]` when none."""
    return raw(200, runtime().bodies["experiments"])


@bp.get("/available")
def experiments_available() -> Response:
    """The safe experiments, as the seed shows them: a JSON array (`[]` at this version)."""
    return raw(200, runtime().bodies["experiments_available"])
