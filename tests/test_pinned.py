"""The token lookup's pinned connections: every change committed elsewhere is seen by the next lookup."""

from __future__ import annotations

import datetime as dt
import pathlib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from coderapi import apikey
from coderapi.database import Store
from coderapi.database.users import STATUS_SUSPENDED
from tests.conftest import MakeToken, MakeUser

LIFETIME = dt.timedelta(days=1)


def key_id(token: str) -> str:
    return apikey.split(token)[0]


def test_changes_by_another_store_are_seen_by_the_next_lookup(
    store: Store, make_user: MakeUser, make_token: MakeToken
) -> None:
    user = make_user("pinned")
    token = make_token(user)
    found = store.get_api_key_with_user(key_id(token))
    assert found is not None and found[1].status == "active"
    # Another Store on the same database: its own engine and connections, as another node or worker.
    other = Store(store.url)
    try:
        other.update_user_status(user.id, STATUS_SUSPENDED)
        found = seen(
            store,
            lambda: store.get_api_key_with_user(key_id(token)),
            lambda f: f is not None and f[1].status == STATUS_SUSPENDED,
        )
        assert found is not None and found[1].status == STATUS_SUSPENDED
        assert other.delete_api_key(key_id(token))
        assert seen(store, lambda: store.get_api_key_with_user(key_id(token)), lambda f: f is None) is None
    finally:
        other.close()


# How long another node's change may take to reach a warmed PostgreSQL token cache (issue 14's bound).
NOTIFY_BOUND_SECONDS = 0.2


def seen(store: Store, lookup: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """The lookup's answer once `done` holds: at once on SQLite (its data_version proof); on PostgreSQL
    within the cache's notification bound, NOTIFY being asynchronous."""
    deadline = time.monotonic() + (NOTIFY_BOUND_SECONDS if store.dialect == "postgresql" else 0.0)
    while True:
        found = lookup()
        if done(found) or time.monotonic() >= deadline:
            return found
        time.sleep(0.002)


def new_connections(store: Store) -> list[Any]:
    """Every DBAPI connection `store`'s engine opens from now on (the pool emptied first, so the next
    lookup's pinned connection is among them)."""
    opened: list[Any] = []
    event.listen(store.engine, "connect", lambda dbapi_connection, _record: opened.append(dbapi_connection))
    store.engine.dispose()
    store.pinned.close()
    return opened


def is_open(connection: Any) -> bool:
    if isinstance(connection, sqlite3.Connection):
        try:
            connection.total_changes  # noqa: B018 (raises once the connection is closed)
        except sqlite3.ProgrammingError:
            return False
        return True
    return not connection.closed


def test_sqlite_keeps_an_answer_only_while_nothing_is_committed(sqlite_store: Store) -> None:
    user = sqlite_store.insert_user("kept", "kept@example.com")
    token = apikey.issue(sqlite_store, user.id, LIFETIME)
    statements: list[str] = []
    opened = new_connections(sqlite_store)
    event.listen(sqlite_store.engine, "connect", lambda conn, _record: conn.set_trace_callback(statements.append))

    def reads() -> int:
        """How often the lookup's query has run."""
        return sum(1 for sql in statements if "FROM api_keys JOIN users" in sql)

    first = sqlite_store.get_api_key_with_user(key_id(token))
    assert len(opened) == 1 and reads() == 1
    # Nothing committed since: the same decoded answer, not read again.
    assert sqlite_store.get_api_key_with_user(key_id(token)) is first
    assert reads() == 1
    # Any commit by another connection (here an unrelated user) ends it: the row is read again.
    sqlite_store.insert_user("other", "other@example.com")
    assert sqlite_store.get_api_key_with_user(key_id(token)) == first
    assert reads() == 2


def test_sqlite_revocation_from_another_process_is_seen_at_once(sqlite_store: Store) -> None:
    user = sqlite_store.insert_user("proc", "proc@example.com")
    token = apikey.issue(sqlite_store, user.id, LIFETIME)
    assert sqlite_store.get_api_key_with_user(key_id(token)) is not None
    assert sqlite_store.get_api_key_with_user(key_id(token)) is not None
    path = sqlite_store.url.removeprefix("sqlite:///")
    assert pathlib.Path(path).exists()
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('DELETE FROM api_keys WHERE id = ?', (sys.argv[2],)); c.commit()"
    )
    subprocess.run([sys.executable, "-c", script, path, key_id(token)], check=True, timeout=30)
    assert sqlite_store.get_api_key_with_user(key_id(token)) is None


def test_unknown_keys_are_answered_and_then_found_once_created(sqlite_store: Store) -> None:
    user = sqlite_store.insert_user("late", "late@example.com")
    token = apikey.issue(sqlite_store, user.id, LIFETIME)
    kid = key_id(token)
    assert sqlite_store.delete_api_key(kid)
    assert sqlite_store.get_api_key_with_user(kid) is None
    assert sqlite_store.get_api_key_with_user(kid) is None
    token = apikey.issue(sqlite_store, user.id, LIFETIME)
    assert sqlite_store.get_api_key_with_user(key_id(token)) is not None


def test_each_thread_has_its_own_connection_and_a_finished_thread_closes_it(
    store: Store, make_user: MakeUser, make_token: MakeToken
) -> None:
    token = make_token(make_user("threads"))
    results: list[object] = []

    def lookup() -> None:
        results.append(store.get_api_key_with_user(key_id(token)))

    opened = new_connections(store)
    threads = [threading.Thread(target=lookup) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r is not None for r in results)
    assert len(opened) == 4
    import gc

    gc.collect()
    # Only the connections of live threads remain open (none of the four, none here yet).
    assert not any(is_open(c) for c in opened)
    store.get_api_key_with_user(key_id(token))
    assert len(opened) == 5 and is_open(opened[4])
    store.close()
    assert not any(is_open(c) for c in opened)


@pytest.mark.parametrize("attempts", [3])
def test_lookups_after_close_open_a_new_connection(
    store: Store, make_user: MakeUser, make_token: MakeToken, attempts: int
) -> None:
    token = make_token(make_user("reopen"))
    for _ in range(attempts):
        assert store.get_api_key_with_user(key_id(token)) is not None
        store.pinned.close()
    assert store.get_api_key_with_user(key_id(token)) is not None
