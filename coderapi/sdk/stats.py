"""`codersdk.DeploymentStats`: the body of GET /deployment/stats, with Go's time and float spelling."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, fields

from coderapi.goformat import go_float, rfc3339


class GoTime(fields.Field[dt.datetime]):
    """A `time.Time` written by coderd: RFC 3339 in UTC with trimmed fractional seconds."""

    def _serialize(self, value: dt.datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else rfc3339(value)


class GoFloat64(fields.Field[float]):
    """A `float64` written by coderd's JSON encoder."""

    def _serialize(self, value: float | None, attr: str | None, obj: Any, **kwargs: Any) -> float | int | None:
        return None if value is None else go_float(float(value))


class WorkspaceConnectionLatencyMS(Schema):
    # The seed's lower-case keys (coderd's Go struct has no json tags and writes P50/P95).
    p50 = GoFloat64(required=True)
    p95 = GoFloat64(required=True)


class CoderdWorkspaceConnectionLatencyMS(Schema):
    """The same struct as coderd writes it: no json tags, so the Go field names (the dashboard reads these)."""

    p50 = GoFloat64(required=True, data_key="P50")
    p95 = GoFloat64(required=True, data_key="P95")


class WorkspaceDeploymentStats(Schema):
    pending = fields.Integer(required=True)
    building = fields.Integer(required=True)
    running = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    stopped = fields.Integer(required=True)
    connection_latency_ms = fields.Nested(WorkspaceConnectionLatencyMS, required=True)
    rx_bytes = fields.Integer(required=True)
    tx_bytes = fields.Integer(required=True)


class CoderdWorkspaceDeploymentStats(WorkspaceDeploymentStats):
    connection_latency_ms = fields.Nested(CoderdWorkspaceConnectionLatencyMS, required=True)


class SessionCountDeploymentStats(Schema):
    vscode = fields.Integer(required=True)
    ssh = fields.Integer(required=True)
    jetbrains = fields.Integer(required=True)
    reconnecting_pty = fields.Integer(required=True)


class DeploymentStats(Schema):
    """Fields in coderd's declaration order, which is the order on the wire."""

    aggregated_from = GoTime(required=True)
    collected_at = GoTime(required=True)
    next_update_at = GoTime(required=True)
    workspaces = fields.Nested(WorkspaceDeploymentStats, required=True)
    session_count = fields.Nested(SessionCountDeploymentStats, required=True)


class CoderdDeploymentStats(DeploymentStats):
    workspaces = fields.Nested(CoderdWorkspaceDeploymentStats, required=True)


deployment_stats_schema = DeploymentStats()
