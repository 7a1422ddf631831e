"""Queries on `site_configs`, coderd's key/value table (deployment id, last update check, …)."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, select

from coderapi.database.dialect import upsert
from coderapi.database.tables import site_configs

DEPLOYMENT_ID_KEY = "deployment_id"


class SiteConfigQueries:
    engine: Engine

    def get_site_config(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(site_configs.c.value).where(site_configs.c.key == key)).scalar_one_or_none()

    def upsert_site_config(self, key: str, value: str) -> None:
        stmt = upsert(self.engine, site_configs).values(key=key, value=value)
        stmt = stmt.on_conflict_do_update(index_elements=[site_configs.c.key], set_={"value": value})
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def ensure_site_configs(self, values: dict[str, str]) -> dict[str, str]:
        """Store `values` unless their first key exists already; return what is stored for each key.

        INSERT … ON CONFLICT DO NOTHING on the first key is atomic on both databases, so nodes racing
        to create the same settings all read back the one set that won, never a mix of two.
        """
        keys = list(values)
        with self.engine.begin() as conn:
            first = upsert(self.engine, site_configs).values(key=keys[0], value=values[keys[0]])
            first = first.on_conflict_do_nothing(index_elements=[site_configs.c.key]).returning(site_configs.c.key)
            won = conn.execute(first).first() is not None
            if won and len(keys) > 1:
                conn.execute(site_configs.insert(), [{"key": k, "value": values[k]} for k in keys[1:]])
            rows = conn.execute(select(site_configs.c.key, site_configs.c.value).where(site_configs.c.key.in_(keys)))
            stored = {row.key: row.value for row in rows}
        return stored

    def ensure_deployment_id(self) -> str:
        """The deployment's id: a lowercase UUIDv4 created on first start, the same on every node."""
        return self.ensure_site_configs({DEPLOYMENT_ID_KEY: str(uuid.uuid4())})[DEPLOYMENT_ID_KEY]
