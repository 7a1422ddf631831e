"""`codersdk.Experiments` and the safe-experiments body of GET /experiments/available."""

from __future__ import annotations

from marshmallow import Schema, fields


class AvailableExperiments(Schema):
    """coderd's `codersdk.AvailableExperiments`: `{"safe": [...]}` (the seed shows the bare array)."""

    safe = fields.List(fields.String(), required=True)


available_experiments_schema = AvailableExperiments()
