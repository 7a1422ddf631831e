"""GET /api/v2/experiments: the experiments this deployment turned on, and the safe ones (session token).

Both bodies are built once at startup (`create_app`).
"""

from __future__ import annotations

from flask import Blueprint, Response

from coderapi.runtime import runtime

bp = Blueprint("experiments", __name__, url_prefix="/api/v2/experiments")


@bp.get("")
@bp.get("/")
def experiments_get() -> Response:
    """The configured experiments as coderd.ReadExperiments read them; `[]` when none."""
    return runtime().answers.experiments.response()


@bp.get("/available")
def experiments_available() -> Response:
    """The safe experiments, as the seed shows them: a JSON array (`[]` at this version)."""
    return runtime().answers.experiments_available.response()
