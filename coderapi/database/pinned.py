"""One database connection per thread, kept open, for the read every authenticated request makes.

Checking a connection out of SQLAlchemy's pool and back in (with its reset) costs about as much as the
query itself on SQLite; on PostgreSQL the connection would also switch to autocommit and back each
time. A pinned connection is taken from the engine once (so the engine's connect hooks, such as
SQLite's pragmas, apply), detached from the pool so it does not hold a pool slot, and put in autocommit
on PostgreSQL for good: each read is one statement, one round trip, no transaction left open.

Connections are per thread and per process (a forked child opens its own). A connection the server
has dropped is closed and replaced on the next call; `close()` closes every pinned connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError


class Disconnected(Exception):
    """The server dropped the pinned connection (it has been closed; the next call opens a new one)."""

    def __init__(self, sql: str, err: Exception) -> None:
        super().__init__(str(err))
        self.sql = sql
        self.err = err


class _Pin:
    def __init__(self, fairy: Any, generation: int) -> None:
        self.fairy = fairy  # the pool's wrapper: once detached, closing it closes the connection
        self.dbapi: Any = fairy.dbapi_connection
        self.driver: Any = fairy.driver_connection
        fairy.detach()
        self.pid = os.getpid()
        self.generation = generation
        # Closes the connection when the pin goes: at `close()`, on a disconnect, or when its thread
        # ends and the thread-local is dropped (servers that start a thread per request).
        self.release = weakref.finalize(self, _close_quietly, fairy, self.pid)


class PinnedConnections:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Pin] = weakref.WeakSet()
        self._generation = 0

    def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> Any:
        """The first row of `sql` on this thread's connection, or None.

        Raises Disconnected when the server dropped the connection, DBAPIError for any other database
        error (including failing to connect)."""
        pin = self._pin(sql, params)
        error_class = self.engine.dialect.loaded_dbapi.Error
        try:
            cur = pin.driver.cursor()
            try:
                cur.execute(sql, params)
                return cur.fetchone()
            finally:
                cur.close()
        except error_class as err:
            if self.engine.dialect.is_disconnect(err, pin.dbapi, None):
                self._drop(pin)
                raise Disconnected(sql, err) from err
            # The exception SQLAlchemy itself would raise, so callers handle one kind of database error.
            orig: Exception = err
            raise DBAPIError.instance(sql, params, orig, error_class) from err

    def _pin(self, sql: str, params: Any) -> _Pin:
        pin: _Pin | None = getattr(self._local, "pin", None)
        if pin is not None and pin.generation == self._generation and pin.pid == os.getpid():
            return pin
        error_class = self.engine.dialect.loaded_dbapi.Error
        try:
            # The pool hands over the driver's own error when it cannot connect (the database is down).
            fairy = self.engine.raw_connection()
        except error_class as err:
            raise DBAPIError.instance(sql, params, err, error_class) from err
        pin = _Pin(fairy, self._generation)
        if self.engine.dialect.name == "postgresql":
            pin.driver.autocommit = True
        with self._lock:
            self._open.add(pin)
        self._local.pin = pin
        return pin

    def _drop(self, pin: _Pin) -> None:
        with self._lock:
            self._open.discard(pin)
        if getattr(self._local, "pin", None) is pin:
            self._local.pin = None
        pin.release()

    def close(self) -> None:
        """Close every pinned connection of this process; threads open new ones when next used."""
        with self._lock:
            pins = list(self._open)
            self._open.clear()
            self._generation += 1
        for pin in pins:
            pin.release()


# Connections inherited through fork: the sockets are the parent's. They are never closed here, and
# kept referenced so the driver does not close them when they are collected either.
_INHERITED: list[Any] = []


def _close_quietly(fairy: Any, pid: int) -> None:
    if pid != os.getpid():
        _INHERITED.append(fairy)
        return
    # A connection that is already broken needs no closing.
    with contextlib.suppress(Exception):
        fairy.close()
