"""PostgreSQL's token cache (coderapi/database/keycache.py): answers kept per key id, dropped by the
notifications the triggers of migration 0002 send, off whenever the listener is not listening."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest.mock import Mock

import psycopg
import pytest

from coderapi import apikey
from coderapi.config.settings import Settings, SettingsError
from coderapi.database import Store
from coderapi.database.apikeys import APIKey
from coderapi.database.keycache import SELF_TEST_SECONDS, KeyCache
from coderapi.database.users import STATUS_SUSPENDED, User
from tests.conftest import MakeToken, MakeUser

pytestmark = pytest.mark.parametrize("store", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)

LISTEN_TIMEOUT = 10.0
# The revocation window the README promises, as measured here.
MEDIAN_LIMIT = 0.020
MAX_LIMIT = 0.200
TRIALS = 60

Found = tuple[APIKey, User] | None


def key_id(token: str) -> str:
    return apikey.split(token)[0]


def libpq_url(store: Store) -> str:
    return store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def psql(store: Store) -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own, as a manual `psql` session would be (autocommit)."""
    with psycopg.connect(libpq_url(store), autocommit=True) as conn:
        yield conn


@pytest.fixture
def other(store: Store) -> Iterator[Store]:
    """Another node's Store on the same database."""
    s = Store(store.url, token_cache=False)
    yield s
    s.close()


def cache_of(store: Store) -> KeyCache:
    assert store.key_cache is not None
    return store.key_cache


def warm(store: Store, kid: str) -> Found:
    """Listening, and the key's answer kept (proved by a second lookup that does not read)."""
    assert cache_of(store).wait_listening(LISTEN_TIMEOUT), "listener did not start"
    # The key's own INSERT notification may still be on its way: an answer read while it arrives is
    # not kept, so the cache fills on a later lookup.
    deadline = time.monotonic() + 2
    found = store.get_api_key_with_user(kid)
    while kid not in cache_of(store).entries and time.monotonic() < deadline:
        time.sleep(0.001)
        found = store.get_api_key_with_user(kid)
    assert found is not None
    assert kid in cache_of(store).entries
    assert store.get_api_key_with_user(kid) is found
    return found


def wait_for(store: Store, kid: str, seen: Callable[[Found], bool], timeout: float = 2.0) -> float:
    """Seconds until the lookup's answer satisfies `seen`; fails after `timeout`."""
    start = time.monotonic()
    while True:
        if seen(store.get_api_key_with_user(kid)):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            pytest.fail(f"change not seen after {timeout}s")
        time.sleep(0.0005)


def test_a_warmed_lookup_does_not_read_the_database(
    store: Store, make_user: MakeUser, make_token: MakeToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    kid = key_id(make_token(make_user("warm")))
    found = warm(store, kid)
    read = Mock(wraps=store.pinned.read)
    monkeypatch.setattr(store.pinned, "read", read)
    for _ in range(5):
        assert store.get_api_key_with_user(kid) is found
    assert read.call_count == 0


def test_key_deleted_by_another_node(store: Store, other: Store, make_user: MakeUser, make_token: MakeToken) -> None:
    kid = key_id(make_token(make_user("deleted-key")))
    warm(store, kid)
    assert other.delete_api_key(kid)
    wait_for(store, kid, lambda found: found is None)


def test_key_expired_by_update_in_psql(
    store: Store, psql: psycopg.Connection[Any], make_user: MakeUser, make_token: MakeToken
) -> None:
    kid = key_id(make_token(make_user("expired-key")))
    warm(store, kid)
    psql.execute("UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = %s", (kid,))
    wait_for(store, kid, lambda found: found is not None and found[0].expires_at < apikey_now())


def apikey_now() -> Any:
    from coderapi.database.users import now

    return now()


def test_user_suspended_by_another_node(store: Store, other: Store, make_user: MakeUser, make_token: MakeToken) -> None:
    user = make_user("suspended")
    kids = [key_id(make_token(user, name=f"t{i}")) for i in range(3)]
    for kid in kids:
        warm(store, kid)
    other.update_user_status(user.id, STATUS_SUSPENDED)
    for kid in kids:
        wait_for(store, kid, lambda found: found is not None and found[1].status == STATUS_SUSPENDED)


def test_user_deleted_by_another_node(store: Store, other: Store, make_user: MakeUser, make_token: MakeToken) -> None:
    user = make_user("gone")
    kid = key_id(make_token(user))
    warm(store, kid)
    other.delete_user(user.id)
    wait_for(store, kid, lambda found: found is None)


def test_role_changed_in_psql(
    store: Store, psql: psycopg.Connection[Any], make_user: MakeUser, make_token: MakeToken
) -> None:
    user = make_user("promoted")
    kid = key_id(make_token(user))
    warm(store, kid)
    psql.execute("""UPDATE users SET rbac_roles = '["owner"]' WHERE id = %s""", (user.id,))
    wait_for(store, kid, lambda found: found is not None and found[1].rbac_roles == ("owner",))


def test_this_process_sees_its_own_writes_at_once(store: Store, make_user: MakeUser, make_token: MakeToken) -> None:
    user = make_user("own")
    kid = key_id(make_token(user))
    warm(store, kid)
    store.update_user_status(user.id, STATUS_SUSPENDED)
    found = store.get_api_key_with_user(kid)
    assert found is not None and found[1].status == STATUS_SUSPENDED
    assert store.delete_api_key(kid)
    assert store.get_api_key_with_user(kid) is None


def test_revocation_is_seen_within_milliseconds(
    store: Store, psql: psycopg.Connection[Any], make_user: MakeUser, make_token: MakeToken
) -> None:
    user = make_user("window")
    took: list[float] = []
    for i in range(TRIALS):
        kid = key_id(make_token(user, name=f"w{i}"))
        warm(store, kid)
        psql.execute("DELETE FROM api_keys WHERE id = %s", (kid,))
        took.append(wait_for(store, kid, lambda found: found is None))
    median, worst = statistics.median(took), max(took)
    print(f"revocation seen: median {median * 1000:.2f} ms, max {worst * 1000:.2f} ms over {TRIALS} trials")
    assert median <= MEDIAN_LIMIT and worst <= MAX_LIMIT, (median, worst)


def terminate_listener(store: Store, psql: psycopg.Connection[Any]) -> None:
    pid = cache_of(store).backend_pid()
    assert pid is not None
    row = psql.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row is not None and row[0] is True


def test_listener_loss_reads_the_database_until_it_is_back(
    store: Store,
    psql: psycopg.Connection[Any],
    make_user: MakeUser,
    make_token: MakeToken,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = make_user("lost")
    kid = key_id(make_token(user))
    kept = key_id(make_token(user, name="kept"))
    warm(store, kid)
    warm(store, kept)
    old_pid = cache_of(store).backend_pid()
    old_epoch = cache_of(store).epoch
    terminate_listener(store, psql)
    psql.execute("DELETE FROM api_keys WHERE id = %s", (kid,))
    # Once the listener has noticed the loss (its thread needs a moment: the test raced it under load),
    # the very next lookup reads the database: refused, though no notification told the cache. Noticed
    # means the epoch moved (0, or a new connection's): libpq's backend pid reads 0 a moment earlier,
    # as soon as the socket is gone, before the listener has turned the cache off.
    deadline = time.monotonic() + 5
    while cache_of(store).epoch == old_epoch and time.monotonic() < deadline:
        time.sleep(0.001)
    assert store.get_api_key_with_user(kid) is None
    # Back within a few seconds, on a new connection, and then serving from the cache again.
    start = time.monotonic()
    assert cache_of(store).wait_listening(5.0), "listener did not reconnect"
    assert cache_of(store).backend_pid() != old_pid
    assert time.monotonic() - start < 5.0
    found = store.get_api_key_with_user(kept)
    assert found is not None
    read = Mock(wraps=store.pinned.read)
    monkeypatch.setattr(store.pinned, "read", read)
    assert store.get_api_key_with_user(kept) is found
    assert read.call_count == 0


def test_an_answer_read_while_the_listener_was_down_is_not_kept(
    store: Store, psql: psycopg.Connection[Any], make_user: MakeUser, make_token: MakeToken
) -> None:
    kid = key_id(make_token(make_user("epoch")))
    cache = cache_of(store)
    assert cache.wait_listening(LISTEN_TIMEOUT)
    ticket = cache.ticket()
    terminate_listener(store, psql)
    found = store.get_api_key_with_user(kid)
    assert found is not None
    deadline = time.monotonic() + 5
    while cache.epoch == ticket.epoch and time.monotonic() < deadline:
        time.sleep(0.01)
    cache.put(kid, found[1].id, found, ticket)  # read under an epoch that has ended
    assert kid not in cache.entries


def test_forgotten_keys_leave_no_index_behind(store: Store, make_user: MakeUser, make_token: MakeToken) -> None:
    user = make_user("churn")
    for i in range(5):
        kid = key_id(make_token(user, name=f"c{i}"))
        warm(store, kid)
        assert store.delete_api_key(kid)
    assert cache_of(store).entries == {}
    assert cache_of(store).by_user == {}


def test_missed_notification_lives_at_most_the_age_bound(
    store: Store, psql: psycopg.Connection[Any], make_user: MakeUser, make_token: MakeToken
) -> None:
    cache = cache_of(store)
    cache.max_age = 0.5
    kid = key_id(make_token(make_user("aged")))
    warm(store, kid)
    # A writer whose notification is lost: triggers off for this session (replication role).
    psql.execute("SET session_replication_role = replica")
    psql.execute("DELETE FROM api_keys WHERE id = %s", (kid,))
    psql.execute("SET session_replication_role = DEFAULT")
    assert store.get_api_key_with_user(kid) is not None  # nothing told the cache
    assert wait_for(store, kid, lambda found: found is None, timeout=2.0) <= 0.5 + 0.1


def test_the_size_bound_starts_over(store: Store, make_user: MakeUser, make_token: MakeToken) -> None:
    cache = cache_of(store)
    cache.max_entries = 3
    user = make_user("many")
    assert cache.wait_listening(LISTEN_TIMEOUT)
    for i in range(7):
        assert store.get_api_key_with_user(key_id(make_token(user, name=f"m{i}"))) is not None
        assert len(cache.entries) <= 3


@pytest.fixture
def pooling_proxy(store: Store) -> Iterator[str]:
    """The database's URL through a TCP proxy that forwards every message but PostgreSQL's
    NotificationResponse, as a transaction-pooling proxy treats LISTEN: accepted, nothing ever
    arrives. (No TLS or GSS negotiation, so every message from the server has a type and a length.)"""
    url = store.engine.url
    server_address = (url.host or "127.0.0.1", url.port or 5432)
    front = socket.create_server(("127.0.0.1", 0))
    sockets = [front]

    def forward(source: socket.socket, sink: socket.socket, drop_notifications: bool) -> None:
        pending = b""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not drop_notifications:
                    sink.sendall(data)
                    continue
                pending += data
                out = bytearray()
                while len(pending) >= 5 and len(pending) >= 1 + (size := int.from_bytes(pending[1:5], "big")):
                    message, pending = pending[: 1 + size], pending[1 + size :]
                    if message[:1] != b"A":
                        out += message
                sink.sendall(out)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = front.accept()
                backend = socket.create_connection(server_address)
                sockets.extend((client, backend))
                threading.Thread(target=forward, args=(client, backend, False), daemon=True).start()
                threading.Thread(target=forward, args=(backend, client, True), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    port = front.getsockname()[1]
    yield url.set(host="127.0.0.1", port=port, query={"sslmode": "disable", "gssencmode": "disable"}).render_as_string(
        hide_password=False
    )
    for sock in sockets:
        sock.close()


def test_listen_that_never_delivers_leaves_the_cache_off(
    store: Store, pooling_proxy: str, make_user: MakeUser, make_token: MakeToken, caplog: pytest.LogCaptureFixture
) -> None:
    proxied = Store(pooling_proxy)
    try:
        cache = cache_of(proxied)
        assert not cache.wait_listening(SELF_TEST_SECONDS + 1.0)
        assert "the self-test notification never arrived" in caplog.text
        kid = key_id(make_token(make_user("pooled")))
        assert proxied.get_api_key_with_user(kid) is not None
        assert proxied.get_api_key_with_user(kid) is not None
        assert cache.entries == {}
    finally:
        proxied.close()


def test_the_cache_can_be_switched_off(store: Store) -> None:
    assert Settings.from_environ({"CODERAPI_TOKEN_CACHE": "off"}).token_cache is False
    assert Settings.from_environ({}).token_cache is True
    with pytest.raises(SettingsError):
        Settings.from_environ({"CODERAPI_TOKEN_CACHE": "maybe"})
    off = Store(store.url, token_cache=False)
    try:
        assert off.key_cache is None
    finally:
        off.close()


def test_unused_id_is_not_cached(store: Store) -> None:
    assert cache_of(store).wait_listening(LISTEN_TIMEOUT)
    missing = uuid.uuid4().hex[:10]
    assert store.get_api_key_with_user(missing) is None
    assert missing not in cache_of(store).entries


def test_each_forked_worker_listens_and_sees_revocation_by_the_cli(
    store: Store, psql: psycopg.Connection[Any], make_user: MakeUser, make_token: MakeToken, start_server: Any
) -> None:
    from tests.conftest import coderapi_cli, http_request

    token = make_token(make_user("served"))
    server = start_server(env={"CODER_PG_CONNECTION_URL": store.url}, workers=2)
    env = {**server_env(server), "CODER_PG_CONNECTION_URL": store.url}
    headers = {"Coder-Session-Token": token}

    def listeners() -> int:
        # Listeners of this test process's own Stores (winding down) aside.
        row = psql.execute(
            "SELECT count(DISTINCT application_name) FROM pg_stat_activity"
            " WHERE application_name LIKE 'coderapi-keycache %%' AND application_name <> %s"
            " AND datname = current_database()",
            (f"coderapi-keycache {os.getpid()}",),
        ).fetchone()
        return int(row[0]) if row is not None else 0

    # Enough requests that both workers serve some (and start their listeners after the fork).
    deadline = time.monotonic() + 20
    while listeners() < 2 and time.monotonic() < deadline:
        for _ in range(10):
            assert http_request(server.port, "GET", "/api/v2/deployment/ssh", headers)[0] == 200
        time.sleep(0.05)
    assert listeners() == 2, "one listener per worker process"
    coderapi_cli("users", "suspend", "served", env=env)
    # Seen by every worker within milliseconds (the CLI process's exit alone takes longer).
    for _ in range(20):
        status, _h, body = http_request(server.port, "GET", "/api/v2/deployment/ssh", headers)
        assert status == 401, body


def server_env(server: Any) -> dict[str, str]:
    from coderapi.testing import child_env

    return child_env({"CODERAPI_DATA_DIR": str(server.log.parent / "cli")})
