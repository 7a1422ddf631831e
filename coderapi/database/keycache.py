"""PostgreSQL's token-lookup answers kept in memory, invalidated by PostgreSQL itself (LISTEN/NOTIFY).

Migration 0002 adds triggers on `api_keys` and `users` (the two tables the token check reads) that
`pg_notify` the channel `coderapi_auth` with what changed: `k:<key id>` for an api_keys row,
`u:<user id>` for a users row, `*` for a TRUNCATE. Every writer is covered: this node, another node,
the CLI, a manual `psql` session. PostgreSQL delivers a notification when its transaction commits.

Each worker process has one listener: a connection of its own (outside the pool and the pinned
connections) in a daemon thread, which drops the entries each notification names (a user's
notification drops every key of that user). It is started lazily by the first lookup in the process
that uses it, so it survives gunicorn's fork (a forked child forgets the parent's cache and listener,
see `os.register_at_fork` below).

Fail safe, by a connection epoch: `epoch` is 0 while the listener is not listening, else a number
that changes on every (re)connection. A lookup notes the epoch (and the count of notifications
handled so far) BEFORE it reads the row, so the LISTEN is established before the read, and the
answer is kept only if neither changed during the read: a notification that arrived during the read
may concern the row read, and a reconnection means notifications may have been missed. An entry is
used only while the epoch is the one it was read under and it is younger than the age bound. When
the listener's connection is lost the epoch goes to 0 and the cache is flushed: every lookup reads
the database until the listener is back (reconnection with backoff). A connection on which LISTEN
fails, or a self-test notification never comes back (a transaction-pooling proxy such as PgBouncer
in transaction mode), leaves the cache off; `CODERAPI_TOKEN_CACHE=off` turns it off outright.

Bounds: at most MAX_ENTRIES entries (the cache starts over beyond), none older than MAX_AGE_SECONDS:
a notification lost in any way the epoch does not catch can keep a revoked token alive at most that
long. Expiry is not cached as a decision: the check compares `expires_at` with the clock per request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
import weakref
from typing import Any, NamedTuple

from sqlalchemy import Engine

log = logging.getLogger("coderapi.keycache")

CHANNEL = "coderapi_auth"
# The listener's connection, as pg_stat_activity shows it (with the worker's pid).
APPLICATION_NAME = "coderapi-keycache"
MAX_ENTRIES = 10_000
MAX_AGE_SECONDS = 60.0
# How long the self-test notification may take to come back before LISTEN is judged not to work.
SELF_TEST_SECONDS = 2.0
# How often an idle listener checks its connection (TCP keepalives catch a silent network too), and
# how often it looks whether it was asked to stop.
HEARTBEAT_SECONDS = 5.0
WAKE_SECONDS = 0.5
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
# After LISTEN proved unusable (a pooling proxy), how long before trying again.
NO_LISTEN_RETRY_SECONDS = 300.0

NOTIFY_KEY = "k:"
NOTIFY_USER = "u:"
NOTIFY_ALL = "*"
NOTIFY_PING = "ping:"

LOST_MESSAGE = "token cache off: listener connection lost (%s); reading the database until it is back"
NO_LISTEN_MESSAGE = "token cache off: LISTEN does not work on this connection (%s); a pooling proxy?"


class Ticket(NamedTuple):
    """What a lookup noted before reading the row."""

    epoch: int
    seq: int
    at: float  # monotonic time: an entry's age counts from before its read


class KeyCache:
    """Decoded (key, user) answers per key id, valid while the listener proves nothing changed."""

    def __init__(self, engine: Engine, *, max_entries: int = MAX_ENTRIES, max_age: float = MAX_AGE_SECONDS) -> None:
        self.engine = engine
        self.max_entries = max_entries
        self.max_age = max_age
        # key id -> (epoch when read, monotonic time before the read, answer, user id as text)
        self.entries: dict[str, tuple[int, float, Any, str]] = {}
        self.by_user: dict[str, set[str]] = {}  # user id (text) -> key ids cached for them
        self.epoch = 0  # 0: not listening
        self.seq = 0  # notifications handled (and local invalidations)
        self._epochs = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        _CACHES.add(self)

    # --- the hot path -------------------------------------------------------------------------------

    def get(self, key_id: str) -> Any:
        """The kept answer for `key_id`, or None when the row must be read (starts the listener in
        this process when it is not running)."""
        epoch = self.epoch
        if not epoch:
            self._ensure_listener()
            return None
        entry = self.entries.get(key_id)
        if entry is None or entry[0] != epoch or time.monotonic() - entry[1] > self.max_age:
            return None
        return entry[2]

    def ticket(self) -> Ticket:
        return Ticket(self.epoch, self.seq, time.monotonic())

    def put(self, key_id: str, user_id: uuid.UUID, answer: Any, ticket: Ticket) -> None:
        """Keep `answer`, read after `ticket` was taken, unless anything was heard since."""
        if not ticket.epoch:
            return
        with self._lock:
            if self.epoch != ticket.epoch or self.seq != ticket.seq:
                return
            if len(self.entries) >= self.max_entries:
                self.entries.clear()
                self.by_user.clear()
            user = str(user_id)
            self.entries[key_id] = (ticket.epoch, ticket.at, answer, user)
            self.by_user.setdefault(user, set()).add(key_id)

    # --- invalidation ---------------------------------------------------------------------------------

    def forget_key(self, key_id: str) -> None:
        with self._lock:
            self.seq += 1
            entry = self.entries.pop(key_id, None)
            if entry is not None:
                # Keeps the index as small as the entries (keys created and deleted forever).
                keys = self.by_user.get(entry[3])
                if keys is not None:
                    keys.discard(key_id)
                    if not keys:
                        del self.by_user[entry[3]]

    def forget_user(self, user_id: uuid.UUID | str) -> None:
        with self._lock:
            self.seq += 1
            for key_id in self.by_user.pop(str(user_id), ()):
                self.entries.pop(key_id, None)

    def flush(self) -> None:
        with self._lock:
            self.seq += 1
            self.entries.clear()
            self.by_user.clear()

    def _heard(self, payload: str) -> None:
        if payload.startswith(NOTIFY_KEY):
            self.forget_key(payload[len(NOTIFY_KEY) :])
        elif payload.startswith(NOTIFY_USER):
            self.forget_user(payload[len(NOTIFY_USER) :])
        elif not payload.startswith(NOTIFY_PING):
            self.flush()  # `*` (TRUNCATE) or anything this version does not know

    # --- the listener -------------------------------------------------------------------------------

    def _ensure_listener(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="keycache-listener", daemon=True)
            self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """Start the listener and wait until it listens; False after `timeout` seconds."""
        self._ensure_listener()
        deadline = time.monotonic() + timeout
        while not self.epoch and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.epoch != 0

    def close(self) -> None:
        """Stop the listener (it ends within WAKE_SECONDS, closing its connection) and forget every
        entry; the next lookup starts a new one."""
        with self._lock:
            self._thread = None
            self._stop.set()
            self.epoch = 0
        self.flush()

    def backend_pid(self) -> int | None:
        """The listener's PostgreSQL backend (for tests and diagnostics), None when not connected."""
        conn = self._conn
        return int(conn.info.backend_pid) if conn is not None and self.epoch else None

    def _run(self) -> None:
        # This run's own stop event: after close(), a new run may start while this one winds down,
        # and only the current run may change the cache's state.
        stop = self._stop
        delay = BACKOFF_FIRST_SECONDS
        while not stop.is_set():
            listened = self._session(stop)
            if listened is None:
                stop.wait(NO_LISTEN_RETRY_SECONDS)
                continue
            if listened:
                delay = BACKOFF_FIRST_SECONDS
            stop.wait(delay)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    def _session(self, stop: threading.Event) -> bool | None:
        """One connection: connect, LISTEN, serve notifications until it is lost or `stop` is set.
        True when it listened, False when it could not connect, None when LISTEN proved unusable."""
        try:
            conn = self._connect()
        except Exception as err:  # noqa: BLE001 (any failure to connect means: retry later)
            log.debug("token cache listener cannot connect: %s", _one_line(err))
            return False
        self._conn = conn
        try:
            if not self._listen(conn, stop):
                return None
            self._serve(conn, stop)
        except Exception as err:  # noqa: BLE001 (a lost connection, whatever the driver calls it)
            if not stop.is_set():
                log.warning(LOST_MESSAGE, _one_line(err))
        finally:
            self._lost(stop)
            _close(conn)
        return True

    def _connect(self) -> Any:
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        # Keepalives: a network that drops silently is noticed within about 11 s, not TCP's hours.
        return psycopg.connect(
            url, autocommit=True, connect_timeout=5, keepalives=1, keepalives_idle=5, keepalives_interval=2,
            keepalives_count=3, application_name=f"{APPLICATION_NAME} {os.getpid()}",
        )  # fmt: skip

    def _listen(self, conn: Any, stop: threading.Event) -> bool:
        """LISTEN, then prove that a notification comes back; on success the cache is on."""
        try:
            conn.execute(f"LISTEN {CHANNEL}")
            nonce = NOTIFY_PING + uuid.uuid4().hex
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, nonce))
            heard = False
            for note in conn.notifies(timeout=SELF_TEST_SECONDS):
                if note.payload == nonce:
                    heard = True
                    break
        except Exception as err:  # noqa: BLE001 (LISTEN refused, or the connection went)
            log.warning(NO_LISTEN_MESSAGE, _one_line(err))
            return False
        if not heard:
            log.warning(NO_LISTEN_MESSAGE, "the self-test notification never arrived")
            return False
        with self._lock:
            if stop.is_set():
                return False
            self._epochs += 1
            self.seq += 1
            self.entries.clear()
            self.by_user.clear()
            self.epoch = self._epochs
        return True

    def _serve(self, conn: Any, stop: threading.Event) -> None:
        checked = time.monotonic()
        while not stop.is_set():
            for note in conn.notifies(timeout=WAKE_SECONDS):
                self._heard(note.payload)
            if time.monotonic() - checked >= HEARTBEAT_SECONDS:
                conn.execute("SELECT 1")  # raises when the connection is gone
                checked = time.monotonic()

    def _lost(self, stop: threading.Event) -> None:
        with self._lock:
            if stop is not self._stop:
                return  # a run close() ended; the current one owns the state
            self.epoch = 0
            self.seq += 1
            self.entries.clear()
            self.by_user.clear()
            self._conn = None

    def _after_fork(self) -> None:
        # The parent's thread does not exist here and its connection's socket is the parent's: start
        # over, without closing it (closing would end the parent's session).
        if self._conn is not None:
            _INHERITED.append(self._conn)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._conn = None
        self.epoch = 0
        self.entries = {}
        self.by_user = {}


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _close(conn: Any) -> None:
    # A broken connection needs no closing.
    with contextlib.suppress(Exception):
        conn.close()


_CACHES: weakref.WeakSet[KeyCache] = weakref.WeakSet()
# Listener connections inherited through fork: never closed here, and kept referenced so the driver
# does not close them (ending the parent's session) when they are collected.
_INHERITED: list[Any] = []


def _reset_after_fork() -> None:
    for cache in list(_CACHES):
        cache._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
