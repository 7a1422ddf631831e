"""Persistence: engine, schema, migrations and the Store of queries."""

from coderapi.database.store import Store

__all__ = ["Store"]
