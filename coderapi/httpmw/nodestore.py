"""The rate-limit counters of one node (a gunicorn master and its workers), shared by its processes.

A `limits` storage on LMDB (py-lmdb): a memory-mapped database in a directory on local storage (tmpfs by
default), opened by every worker after the fork. `limits` has no storage shared between processes
without a server (its MemoryStorage is per process), so this adds one, and `limits`' sliding-window
counter stays the algorithm: `acquire_sliding_window_entry` reads both windows, decides and counts in
one LMDB write transaction, which LMDB serialises across processes, so N workers count exactly as one.

Why LMDB: its single writer lock is a robust mutex on Linux, so a worker killed inside a write
transaction leaves nothing held (the next writer takes the lock over; the dead transaction is never
committed); stale reader slots of dead processes are cleared with `reader_check`. Writes are in memory
(`sync=False`): the counters may be lost when the node restarts, which is allowed.

Each counter is `<key>/<window number>` -> (count, expiry timestamp). Expired counters are swept from time
to time, so the database holds the live windows only.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import threading
import time
import weakref
from math import floor
from typing import NoReturn

import lmdb
from limits.storage import Storage
from limits.storage.base import SlidingWindowCounterSupport, TimestampedSlidingWindow

# Virtual size of the map; only pages in use take memory (tmpfs) or disk. ~100 bytes per counter.
MAP_SIZE = 1 << 30
# How often each process sweeps expired counters, and how many it deletes per write transaction (so
# the writer lock is never held long).
SWEEP_SECONDS = 30.0
SWEEP_BATCH = 512
DIR_PREFIX = "coderapi-ratelimit-"
_VALUE = struct.Struct("<qd")  # count, expiry (Unix time)
_SHM = "/dev/shm"  # noqa: S108 (a private directory is made inside it)


def default_parent() -> str:
    """Where a node's counter directory is made: tmpfs when there is one, else the temp directory."""
    return _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else tempfile.gettempdir()


def make_directory() -> str:
    """A fresh private directory for a node's counters."""
    return tempfile.mkdtemp(prefix=DIR_PREFIX, dir=default_parent())


class NodeStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Counters in an LMDB environment at `directory`, shared by every process that opens it.

    Open it after fork (an LMDB environment must not cross a fork). With `owns_directory`, the directory
    is removed when the storage is closed or collected."""

    # Not registered under a URI scheme: built by the limiter with its directory, never from a string.
    STORAGE_SCHEME = None

    def __init__(self, directory: str, *, owns_directory: bool = False, wrap_exceptions: bool = True) -> None:
        super().__init__(directory, wrap_exceptions=wrap_exceptions)
        self.directory = directory
        self.env = _open(directory)
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        self._sweep_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close, directory, directory if owns_directory else "")

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return lmdb.Error

    # --- the sliding-window counter (what the strategy calls) -----------------------------------

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Count `amount` for `key` when the weighted count stays within `limit`, atomically across
        processes (one write transaction). Same arithmetic as `limits`' MemoryStorage."""
        if amount > limit:
            return False
        try:
            allowed = self._acquire(key, limit, expiry, amount)
        except lmdb.Error as err:
            self._raise(err)
        self._maybe_sweep()
        return allowed

    def _acquire(self, key: str, limit: int, expiry: int, amount: int) -> bool:
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        with self.env.begin(write=True) as txn:
            previous_count, previous_ttl, current_count, _ = self._window(txn, previous_key, current_key, expiry, now)
            if floor(previous_count * previous_ttl / expiry + current_count) + amount > limit:
                return False
            raw = txn.get(current_key.encode())
            value = _live(raw, now)
            # A new counter lives two windows: it is the previous window's counter in the next one.
            until = value[1] if value[0] else now + 2 * expiry
            txn.put(current_key.encode(), _VALUE.pack(value[0] + amount, until))
        return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        try:
            with self.env.begin() as txn:
                return self._window(txn, previous_key, current_key, expiry, now)
        except lmdb.Error as err:
            self._raise(err)

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        self.clear(previous_key)
        self.clear(current_key)

    @staticmethod
    def _window(
        txn: lmdb.Transaction, previous_key: str, current_key: str, expiry: int, now: float
    ) -> tuple[int, float, int, float]:
        previous_count = _live(txn.get(previous_key.encode()), now)[0]
        current_count = _live(txn.get(current_key.encode()), now)[0]
        previous_ttl = 0.0 if previous_count == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, current_count, current_ttl

    # --- the rest of limits' Storage interface ----------------------------------------------------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.env.begin(write=True) as txn:
            count, until = _live(txn.get(key.encode()), now)
            if not count:
                until = now + expiry
            txn.put(key.encode(), _VALUE.pack(count + amount, until))
        return count + amount

    def get(self, key: str) -> int:
        with self.env.begin() as txn:
            return _live(txn.get(key.encode()), time.time())[0]

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with self.env.begin() as txn:
            count, until = _live(txn.get(key.encode()), now)
        return until if count else now

    def clear(self, key: str) -> None:
        with self.env.begin(write=True) as txn:
            txn.delete(key.encode())

    def check(self) -> bool:
        try:
            with self.env.begin() as txn:
                txn.stat()
        except lmdb.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self.env.begin(write=True) as txn:
            count = int(txn.stat()["entries"])
            txn.drop(self.env.open_db(txn=txn), delete=False)
        return count

    # --- housekeeping -----------------------------------------------------------------------------

    def sweep(self) -> int:
        """Delete expired counters and clear dead processes' reader slots; the number deleted."""
        self.env.reader_check()
        now = time.time()
        with self.env.begin() as txn:
            expired = [k for k, v in txn.cursor() if _VALUE.unpack(v)[1] <= now]
        for start in range(0, len(expired), SWEEP_BATCH):
            with self.env.begin(write=True) as txn:
                for name in expired[start : start + SWEEP_BATCH]:
                    # Checked again: only a counter still expired inside this transaction goes.
                    raw = txn.get(name)
                    if raw is not None and _VALUE.unpack(raw)[1] <= now:
                        txn.delete(name)
        return len(expired)

    def _maybe_sweep(self) -> None:
        if time.monotonic() < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
            self.sweep()
        except lmdb.Error:
            pass  # housekeeping only: the next sweep tries again
        finally:
            self._sweep_lock.release()

    def _raise(self, err: lmdb.Error) -> NoReturn:
        if self.wrap_exceptions:
            from limits.errors import StorageError

            raise StorageError(err) from err
        raise err

    def close(self) -> None:
        self._finalizer()


def _live(raw: bytes | memoryview | None, now: float) -> tuple[int, float]:
    """(count, expiry) of a stored counter, (0, 0) when absent or expired."""
    if raw is None:
        return 0, 0.0
    count, until = _VALUE.unpack(raw)
    return (count, until) if until > now else (0, 0.0)


# LMDB allows one environment per directory and process: storages on the same directory (several apps in
# one process) share it, counted, by (pid, path) so a forked child never uses its parent's.
_ENVS: dict[tuple[int, str], tuple[lmdb.Environment, int]] = {}
_ENVS_LOCK = threading.Lock()


def _open(directory: str) -> lmdb.Environment:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = (os.getpid(), os.path.realpath(directory))
    with _ENVS_LOCK:
        env, users = _ENVS.get(key, (None, 0))
        if env is None:
            env = lmdb.open(directory, map_size=MAP_SIZE, subdir=True, lock=True, sync=False, metasync=False)
            env.reader_check()
        _ENVS[key] = (env, users + 1)
        return env


def _close(directory: str, remove: str) -> None:
    key = (os.getpid(), os.path.realpath(directory))
    with _ENVS_LOCK:
        env, users = _ENVS.pop(key, (None, 0))
        if env is not None and users > 1:
            _ENVS[key] = (env, users - 1)
        elif env is not None:
            env.close()
    if remove:
        shutil.rmtree(remove, ignore_errors=True)
