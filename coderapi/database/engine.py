"""Building the SQLAlchemy engine for the embedded SQLite file or PostgreSQL."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

# How long a SQLite writer waits for another worker's lock before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def sqlalchemy_url(url: str) -> str:
    """Turn a libpq-style URL (`postgres://…`, as CODER_PG_CONNECTION_URL holds) into a SQLAlchemy one
    that uses psycopg 3; other URLs pass through."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_url(path: str) -> str:
    return "sqlite:///" + os.path.abspath(path)


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """An engine for `url`. SQLite gets WAL mode, a busy timeout and foreign keys on every connection,
    so several gunicorn workers share one file safely. PostgreSQL connections are not pinged before
    use (that would add a round trip to every request): SQLAlchemy discards the pool when a query meets
    a dropped connection, and the hot key lookup retries once on a fresh one."""
    sa_url = make_url(sqlalchemy_url(url))
    kwargs: dict[str, Any] = {}
    if sa_url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        kwargs.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=1800,
            # A stopped database must fail requests quickly instead of hanging them.
            pool_timeout=5,
            connect_args={"connect_timeout": 5},
        )
    engine = create_engine(sa_url, **kwargs)
    if sa_url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
