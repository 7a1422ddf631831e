"""`open_store`: the Store the configuration points at."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coderapi.database.store import Store

if TYPE_CHECKING:
    from coderapi.config import DeploymentValues
    from coderapi.config.settings import Settings


def open_store(values: DeploymentValues, settings: Settings) -> Store:
    """PostgreSQL when `pg_connection_url` is set, else the embedded SQLite file in the data directory."""
    pg_url = values.effective.pg.connection_url
    if pg_url:
        max_open = values.effective.pg.conn_max_open or 10
        return Store(
            pg_url,
            pool_size=max(1, min(max_open, 10)),
            max_overflow=max(0, max_open - 10),
            token_cache=settings.token_cache,
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store("sqlite:///" + str(settings.sqlite_path))
