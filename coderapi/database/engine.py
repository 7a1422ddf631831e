"""Building the SQLAlchemy engine for the embedded SQLite file or PostgreSQL."""

from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# How long a SQLite writer waits for another worker's lock before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def sqlalchemy_url(url: str) -> str:
    """Turn a libpq-style URL (`postgres://…`, as CODER_PG_CONNECTION_URL holds) into a SQLAlchemy one
    that uses psycopg 3; other URLs pass through."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


PG_SCHEMES = ("postgres", "postgresql")
REDACTED = "<redacted>"  # as the configuration loader writes a secret
_QUOTED = re.compile(r'"([^"]*)"')


@functools.cache
def _libpq_keywords() -> frozenset[str]:
    from psycopg import pq

    return frozenset(opt.keyword.decode() for opt in pq.Conninfo.get_defaults())


def redact_quoted(text: str) -> str:
    """A libpq or psycopg message with every double-quoted text replaced by REDACTED, except connection
    option names and single characters: libpq quotes the parts of the connection URL it refuses
    (`invalid sslmode value: "…"`), and the URL is a secret."""

    def one(m: re.Match[str]) -> str:
        inner = m.group(1)
        return m.group(0) if len(inner) <= 1 or inner in _libpq_keywords() else f'"{REDACTED}"'

    return _QUOTED.sub(one, text)


def error_line(err: BaseException) -> str:
    """The first line of a database error, safe to print: quoted parts of the connection URL redacted."""
    lines = str(err).strip().splitlines()
    return redact_quoted(lines[0]) if lines else type(err).__name__


# Refusals that waiting does not fix: SQLite's result names, PostgreSQL's SQLSTATEs
# (insufficient_privilege, read_only_sql_transaction).
_SQLITE_REFUSALS = ("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH", "SQLITE_CANTOPEN")
_PG_REFUSALS = frozenset({"42501", "25006"})


def is_refusal(err: BaseException) -> bool:
    """Whether a database error is a permission or read-only refusal rather than an outage."""
    orig = getattr(err, "orig", None) or err
    if str(getattr(orig, "sqlite_errorname", "")).startswith(_SQLITE_REFUSALS):
        return True
    return getattr(orig, "sqlstate", None) in _PG_REFUSALS


def check_pg_url(url: str) -> None:
    """Raise ValueError saying which part of a CODER_PG_CONNECTION_URL is wrong, never quoting it;
    empty (the embedded SQLite database) is fine."""
    if not url:
        return
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in PG_SCHEMES:
        raise ValueError("the scheme must be postgres:// or postgresql://")
    # Python's and SQLAlchemy's messages quote the offending part, so each failure gets its own text.
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise ValueError("invalid host: an IPv6 address without its closing ]") from None
    try:
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as err:
        reason = "out of range 0-65535" if "range" in str(err) else "not a number"
        raise ValueError(f"invalid port: {reason}") from None
    try:
        make_url(sqlalchemy_url(url))
    except (ArgumentError, ValueError):
        raise ValueError("not a URL SQLAlchemy can read") from None
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except ProgrammingError as err:
        raise ValueError(error_line(err)) from None


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
