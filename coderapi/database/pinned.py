"""One database connection per thread, kept open, for the read every authenticated request makes.

Checking a connection out of SQLAlchemy's pool and back in (with its reset) costs about as much as the
query itself on SQLite; on PostgreSQL the connection would also switch to autocommit and back each
time. A pinned connection is taken from the engine once (so the engine's connect hooks, such as
SQLite's pragmas, apply) and detached from the pool so it does not hold a pool slot.

On PostgreSQL the read goes through psycopg's libpq layer (`psycopg.pq`, part of psycopg's public API):
a statement prepared once per connection, executed in autocommit (no BEGIN before it, no ROLLBACK
after), its row handed back as the columns' text forms (bytes). psycopg's cursor would parse every
column into Python objects on every call, which costs more than the round trip itself; the caller
decodes the text once per distinct row instead (see apikeys.py).

On SQLite a read is also kept, decoded, with the database's `PRAGMA data_version` at the time, and
answered again while that version is unchanged: SQLite changes the version whenever any other
connection (in this process or another) commits, and the pinned connection never writes, so an
unchanged version proves that nothing has been committed since the read: the kept answer is exactly
what reading again would give, never an older one. Checking the version is a fifth of the cost of the
lookup's join. (PostgreSQL has no such cheap proof; there the caller keeps answers in a cache that
PostgreSQL's own notifications invalidate, see keycache.py, and reads here on a miss.)

Connections are per thread and per process (a forked child opens its own). A connection the server
has dropped is closed and replaced on the next call; `close()` closes every pinned connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
# Answers a SQLite pin keeps (one per key looked up since the last commit); beyond it, it starts over.
MAX_KEPT_ANSWERS = 1024


class Disconnected(Exception):
    """The server dropped the pinned connection (it has been closed; the next call opens a new one)."""

    def __init__(self, sql: str, err: Exception) -> None:
        super().__init__(str(err))
        self.sql = sql
        self.err = err


class _Pin:
    """A detached connection; `read` runs one statement and decodes its first row (None when there is
    none), and raises the driver's error (or Disconnected)."""

    def __init__(self, fairy: Any, generation: int) -> None:
        self.dbapi: Any = fairy.dbapi_connection
        self.driver: Any = fairy.driver_connection
        # Out of the pool for good: the pool neither counts nor resets it.
        fairy.detach()
        self.pid = os.getpid()
        self.generation = generation
        # Closes the connection when the pin goes: at `close()`, on a disconnect, or when its thread
        # ends and the thread-local is dropped (servers that start a thread per request). The driver's
        # connection is closed directly: the pool's wrapper would first roll back, which fails loudly
        # on a connection the server has dropped.
        self.release = weakref.finalize(self, _close_quietly, self.dbapi, self.pid)

    def read(self, sql: str, params: tuple[Any, ...], decode: Callable[[Any], T]) -> T | None:
        raise NotImplementedError


class _SQLitePin(_Pin):
    def __init__(self, fairy: Any, generation: int) -> None:
        super().__init__(fairy, generation)
        self.cursor: Any = self.driver.cursor()  # reused: a cursor per query costs a fifth of the query
        # (sql, params) -> (data_version when read, decoded answer)
        self.answers: dict[tuple[str, tuple[Any, ...]], tuple[int, Any]] = {}

    def read(self, sql: str, params: tuple[Any, ...], decode: Callable[[Any], T]) -> T | None:
        cur = self.cursor
        # The version first, then the read: a commit in between makes the kept answer newer than its
        # version, which only costs a read the next time, never the reverse.
        cur.execute("PRAGMA data_version")
        version = cur.fetchone()[0]
        key = (sql, params)
        kept = self.answers.get(key)
        if kept is not None and kept[0] == version:
            return kept[1]  # type: ignore[no-any-return]
        cur.execute(sql, params)
        row = cur.fetchone()
        # Ends the statement (SQLite holds its read lock until the cursor is exhausted).
        cur.fetchall()
        answer = decode(row) if row is not None else None
        if len(self.answers) >= MAX_KEPT_ANSWERS:
            self.answers.clear()
        self.answers[key] = (version, answer)
        return answer


# The text forms the caller decodes, whatever the server's defaults are.
SESSION_SETTINGS = (
    b"SET client_encoding = 'UTF8'; SET DateStyle = 'ISO'; SET TimeZone = 'UTC'; SET bytea_output = 'hex'"
)


class _PostgresPin(_Pin):
    def __init__(self, fairy: Any, generation: int) -> None:
        # Imported here: a SQLite deployment never loads psycopg.
        from psycopg import errors, pq

        super().__init__(fairy, generation)
        self.driver.autocommit = True
        self.pgconn: Any = self.driver.pgconn
        self.encoding = "utf-8"  # SESSION_SETTINGS
        self.statements: dict[str, bytes] = {}  # SQL -> name of its prepared statement
        self._errors = errors
        self._succeeded = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
        self._connection_ok = pq.ConnStatus.OK

    def read(self, sql: str, params: tuple[Any, ...], decode: Callable[[Any], T]) -> T | None:
        try:
            name = self.statements.get(sql)
            if name is None:
                if not self.statements:
                    self._check(self.pgconn.exec_(SESSION_SETTINGS))
                name = f"coderapi_{len(self.statements)}".encode()
                self._check(self.pgconn.prepare(name, sql.encode(self.encoding)))
                self.statements[sql] = name
            # libpq's blocking call; psycopg releases the GIL while it waits.
            res = self.pgconn.exec_prepared(name, [str(p).encode(self.encoding) for p in params])
            self._check(res)
        except self._errors.Error as err:
            if self.pgconn.status != self._connection_ok:
                raise Disconnected(sql, err) from err
            raise
        if res.ntuples == 0:
            return None
        return decode(tuple([res.get_value(0, i) for i in range(res.nfields)]))

    def _check(self, res: Any) -> None:
        if res.status not in self._succeeded:
            raise self._errors.error_from_result(res, encoding=self.encoding)


class PinnedConnections:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Pin] = weakref.WeakSet()
        self._generation = 0
        self._pin_class = _PostgresPin if engine.dialect.name == "postgresql" else _SQLitePin

    def read(self, sql: str, params: tuple[Any, ...], decode: Callable[[Any], T]) -> T | None:
        """`decode` of the first row of `sql` on this thread's connection, or None when there is no
        row. `decode` gets the driver's row on SQLite, the columns' text forms (bytes, None for NULL)
        on PostgreSQL; `sql` uses the driver's positional placeholders (`?` on SQLite, `$1` on
        PostgreSQL). On SQLite the answer may be one kept from an earlier read (see above).

        Raises Disconnected when the server dropped the connection, DBAPIError for any other database
        error (including failing to connect)."""
        pin = self._pin(sql, params)
        error_class = self.engine.dialect.loaded_dbapi.Error
        try:
            return pin.read(sql, params, decode)
        except error_class as err:
            if self.engine.dialect.is_disconnect(err, pin.dbapi, None):
                self._drop(pin)
                raise Disconnected(sql, err) from err
            # The exception SQLAlchemy itself would raise, so callers handle one kind of database error.
            orig: Exception = err
            raise DBAPIError.instance(sql, params, orig, error_class) from err
        except Disconnected:
            self._drop(pin)
            raise

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
        pin = self._pin_class(fairy, self._generation)
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


def _close_quietly(connection: Any, pid: int) -> None:
    if pid != os.getpid():
        _INHERITED.append(connection)
        return
    # A connection that is already broken needs no closing.
    with contextlib.suppress(Exception):
        connection.close()
