"""Leases in `site_configs`: which worker or node does a shared periodic job (the update check, a
deployment-stats refresh) this time.

A lease is a `site_configs` row holding its expiry time. Taking one is a compare-and-set on that row,
so among any number of workers and nodes sharing the database exactly one wins until it expires.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select, update

from coderapi.database.dialect import upsert
from coderapi.database.tables import site_configs


def _parse(value: str) -> dt.datetime | None:
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


class LeaseQueries:
    engine: Engine

    def take_lease(self, key: str, now: dt.datetime, ttl: dt.timedelta) -> str | None:
        """Take lease `key` until `now + ttl` unless someone holds it past `now`. Returns the lease's
        token (for `release_lease`) when taken, None when someone else holds it. An unreadable stored
        value counts as expired."""
        token = (now + ttl).astimezone(dt.UTC).isoformat()
        with self.engine.begin() as conn:
            current = conn.execute(select(site_configs.c.value).where(site_configs.c.key == key)).scalar_one_or_none()
            if current is None:
                stmt = upsert(self.engine, site_configs).values(key=key, value=token)
                stmt = stmt.on_conflict_do_nothing(index_elements=[site_configs.c.key]).returning(site_configs.c.key)
                # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT here.
                return token if conn.execute(stmt).first() is not None else None
            held_until = _parse(current)
            if held_until is not None and held_until > now:
                return None
            swap = (
                update(site_configs)
                .where(site_configs.c.key == key, site_configs.c.value == current)
                .values(value=token)
                .returning(site_configs.c.key)
            )
            return token if conn.execute(swap).first() is not None else None

    def release_lease(self, key: str, token: str) -> None:
        """Give lease `key` up, if `token` still holds it, so the next taker need not wait for it to
        expire (whatever its clock says: a released lease holds no time)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(site_configs).where(site_configs.c.key == key, site_configs.c.value == token).values(value="")
            )
