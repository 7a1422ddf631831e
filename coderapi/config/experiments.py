"""Coder's experiments: the names codersdk knows, the safe ones `*` enables, and coderd.ReadExperiments."""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger("coderapi")

# codersdk.ExperimentsKnown at the seed's commit, and ExperimentsSafe (empty).
EXPERIMENTS_KNOWN = (
    "example",
    "auto-fill-parameters",
    "notifications",
    "workspace-usage",
    "web-push",
    "oauth2",
    "mcp-server-http",
    "workspace-sharing",
)
EXPERIMENTS_SAFE: tuple[str, ...] = ()
UNKNOWN_EXPERIMENT = "ignoring unknown experiment"
HIDDEN_EXPERIMENT = "\U0001f409 HERE BE DRAGONS: opting into hidden experiment"


def read_experiments(raw: Sequence[str]) -> list[str]:
    """coderd.ReadExperiments: `*` expands to the safe list, other names are lower-cased and kept
    (unknown ones with a warning), in order, without deduplication."""
    experiments: list[str] = []
    for name in raw:
        if name == "*":
            experiments.extend(EXPERIMENTS_SAFE)
            continue
        exp = name.lower()
        if exp not in EXPERIMENTS_SAFE:
            message = HIDDEN_EXPERIMENT if exp in EXPERIMENTS_KNOWN else UNKNOWN_EXPERIMENT
            logger.warning("%s: experiment=%s", message, exp)
        experiments.append(exp)
    return experiments
