"""Reaching the real PostgreSQL and Redis the tests use.

A test that needs a service skips only when the service is absent and `CI` is unset; in CI a missing
service fails the run.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

PG_ADMIN_URL = os.environ.get("CODERAPI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CODERAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
    require("PostgreSQL", "127.0.0.1", 5432)


def require_redis() -> None:
    require("Redis", "127.0.0.1", 6379)


def unique_name(prefix: str) -> str:
    """A name no other test run uses (databases, Redis key prefixes)."""
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def create_pg_database(name: str) -> str:
    """Create database `name` on the test server and return its URL."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _db = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
