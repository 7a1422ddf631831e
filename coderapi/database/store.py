"""The Store: one object holding the engine, with every query the service runs.

Queries live in one module per table family and are mixed in here, so `store.<query>()` is the single
way the rest of the code reaches the database.
"""

from __future__ import annotations

from sqlalchemy import Engine

from coderapi.database import migrate
from coderapi.database.apikeys import APIKeyQueries
from coderapi.database.engine import make_engine
from coderapi.database.keycache import KeyCache
from coderapi.database.leases import LeaseQueries
from coderapi.database.pinned import PinnedConnections
from coderapi.database.siteconfigs import SiteConfigQueries
from coderapi.database.stats import StatsQueries
from coderapi.database.users import UserQueries


class Store(SiteConfigQueries, UserQueries, APIKeyQueries, StatsQueries, LeaseQueries):
    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 10, token_cache: bool = True) -> None:
        self.url = url
        self.engine: Engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        # The per-request token lookup's connections (see pinned.py).
        self.pinned = PinnedConnections(self.engine)
        # PostgreSQL's token-lookup cache, invalidated by LISTEN/NOTIFY (see keycache.py); SQLite's
        # lookup keeps its own answers under `PRAGMA data_version` (pinned.py).
        self.key_cache: KeyCache | None = (
            KeyCache(self.engine) if token_cache and self.engine.dialect.name == "postgresql" else None
        )

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Apply every pending migration."""
        migrate.upgrade(self.engine)

    def close(self) -> None:
        if self.key_cache is not None:
            self.key_cache.close()
        self.pinned.close()
        self.engine.dispose()
