"""Reaching the real PostgreSQL and Redis the tests use.

A test that needs a service skips only when the service is absent and `CI` is unset; in CI a missing
service fails the run. PostgreSQL is the server of CODERAPI_TEST_PG_URL (see `coderapi.testing`), and
only a test with the `postgres` marker may reach it, so `-m "not postgres"` runs without it.
"""

from __future__ import annotations

import os
import socket

import pytest

from coderapi import testing

REDIS_URL = os.environ.get("CODERAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Whether the test being set up or run carries the `postgres` marker (set by conftest for each test).
_postgres_marked = False


def entering(item: pytest.Item) -> None:
    """Called as each test starts its setup: what `require_postgres` checks its markers against."""
    global _postgres_marked
    _postgres_marked = item.get_closest_marker("postgres") is not None


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not reachable on {host}:{port}, and CI is set")
    pytest.skip(f"{name} is not running on {host}:{port}")


def require_postgres() -> None:
    if not _postgres_marked:
        pytest.fail("this test reaches PostgreSQL without the postgres marker", pytrace=False)
    require("PostgreSQL", *testing.pg_address())


def require_redis() -> None:
    require("Redis", "127.0.0.1", 6379)
