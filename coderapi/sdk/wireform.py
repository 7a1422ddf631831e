"""The two wire forms, chosen once at startup by `CODERAPI_WIRE_FORMAT` (see README.md).

`reference` answers in the API reference's (the seed's) shapes; `coderd` in coderd's real bytes, which
Coder's own clients decode (the Go SDK and so the `coder` CLI, the dashboard). A `WireForm` holds what
differs, so the app builds every body through one code path and no handler knows which form is served.
`/deployment/config` takes the form's name (`coderapi.config.wire`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema

from coderapi.config.settings import WIRE_FORMAT_CODERD, WIRE_FORMAT_REFERENCE
from coderapi.sdk import stats
from coderapi.sdk.experiments import available_experiments_schema


@dataclass(frozen=True)
class WireForm:
    name: str
    # coderd registers POST /csp/reports without its API-key middleware; the seed asks for a token.
    csp_reports_public: bool
    deployment_stats: Schema

    def safe_experiments(self, safe: Sequence[str]) -> Any:
        """The GET /experiments/available body: the bare array (reference) or `{"safe": [...]}`."""
        if self.name == WIRE_FORMAT_CODERD:
            return available_experiments_schema.dump({"safe": list(safe)})
        return list(safe)


WIRE_FORMS: dict[str, WireForm] = {
    WIRE_FORMAT_REFERENCE: WireForm(WIRE_FORMAT_REFERENCE, False, stats.DeploymentStats()),
    WIRE_FORMAT_CODERD: WireForm(WIRE_FORMAT_CODERD, True, stats.CoderdDeploymentStats()),
}
