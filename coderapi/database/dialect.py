"""Small helpers for statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(engine: Engine, table: Table) -> Any:
    """An INSERT that supports `.on_conflict_do_nothing()` / `.on_conflict_do_update()` on this engine."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
