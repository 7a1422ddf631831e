"""The node's rate-limit store: exact counting from several processes, and no lock left by a killed one."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import threading
import time
from typing import Any

import pytest
from limits import RateLimitItemPerMinute
from limits.strategies import SlidingWindowCounterRateLimiter

from coderapi.config.settings import RATE_LIMIT_DIR_ENV, Settings
from coderapi.httpmw.nodestore import NodeStorage
from coderapi.httpmw.ratelimit import RateLimiter
from coderapi.serving import NodeCounters

# Processes are spawned, not forked: an LMDB environment must not cross a fork, and a spawned child
# opens the store the way a gunicorn worker does, on its own.
SPAWN = multiprocessing.get_context("spawn")
KEY = "127.0.0.1:/api/v2/buildinfo:"


def _count(directory: str, limit: int, hits: int, start: Any, out: Any) -> None:
    storage = NodeStorage(directory)
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = RateLimitItemPerMinute(limit)
    start.wait(30)
    out.put(sum(limiter.hit(item, KEY) for _ in range(hits)))
    storage.close()


def _hold_write_lock(directory: str, holding: Any) -> None:
    storage = NodeStorage(directory)
    txn = storage.env.begin(write=True)
    txn.put(b"half-written", b"\0" * 16)
    holding.set()
    time.sleep(60)  # killed long before


def fresh_window(needed: float = 5.0) -> None:
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)


def test_processes_counting_at_once_share_one_exact_budget(tmp_path: pathlib.Path) -> None:
    fresh_window()
    directory = str(tmp_path / "counters")
    start, out = SPAWN.Barrier(5), SPAWN.Queue()
    procs = [SPAWN.Process(target=_count, args=(directory, 5000, 2000, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.wait(30)  # every child has its store open: all count together
    allowed = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    # 8000 hits, the limit exactly (counters of their own would let all 8000 through).
    assert sum(allowed) == 5000, allowed


def test_a_process_killed_holding_the_write_lock_blocks_nobody(tmp_path: pathlib.Path) -> None:
    fresh_window()
    directory = str(tmp_path / "counters")
    storage = NodeStorage(directory)
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = RateLimitItemPerMinute(3)
    assert limiter.hit(item, KEY)

    holding = SPAWN.Event()
    holder = SPAWN.Process(target=_hold_write_lock, args=(directory, holding))
    holder.start()
    assert holding.wait(30)
    # A hit now waits for the writer lock; the holder dies with SIGKILL while it waits.
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(limiter.hit(item, KEY)))
    began = time.monotonic()
    waiter.start()
    time.sleep(0.3)
    assert not results  # really blocked by the holder
    os.kill(holder.pid or 0, signal.SIGKILL)
    holder.join(10)
    waiter.join(5)
    assert results == [True]
    assert time.monotonic() - began < 2.0
    # The dead transaction was never committed, and counting goes on exactly, promptly.
    assert storage.env.begin().get(b"half-written") is None
    began = time.monotonic()
    assert limiter.hit(item, KEY)
    assert not limiter.hit(item, KEY)
    assert time.monotonic() - began < 0.5
    storage.close()
    # A worker started after the death counts against the same budget.
    start, out = SPAWN.Barrier(2), SPAWN.Queue()
    late = SPAWN.Process(target=_count, args=(directory, 3, 2, start, out))
    late.start()
    start.wait(30)
    assert out.get(timeout=30) == 0
    late.join(10)


def test_expired_counters_are_swept(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = NodeStorage(str(tmp_path / "counters"))
    assert storage.incr("old", 1) == 1
    assert storage.incr("live", 600) == 1
    assert storage.sweep() == 0
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 5)
    assert storage.get("old") == 0
    assert storage.sweep() == 1
    assert storage.get("live") == 1
    assert storage.env.stat()["entries"] == 1
    storage.close()


def test_own_directory_removed_on_close(tmp_path: pathlib.Path) -> None:
    given = tmp_path / "given"
    NodeStorage(str(given)).close()
    assert given.is_dir()  # an operator's directory stays
    limiter = RateLimiter(5)  # an app without a server: a directory of its own
    own = pathlib.Path(limiter.node_storage.directory)
    assert own.is_dir() and own.name.startswith("coderapi-ratelimit-")
    limiter.stop()
    assert not own.exists()


def test_node_store_failure_falls_back_to_memory(tmp_path: pathlib.Path) -> None:
    limiter = RateLimiter(2, node_dir=str(tmp_path / "counters"))
    limiter.node_storage.env.close()  # any use of a closed environment raises lmdb.Error
    assert [limiter.hit(KEY).allowed for _ in range(3)] == [True, True, False]


def test_server_counters_directory(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RATE_LIMIT_DIR_ENV, raising=False)
    settings = Settings(data_dir=tmp_path)
    made = NodeCounters()
    made.prepare(settings)
    assert os.environ[RATE_LIMIT_DIR_ENV] == made.directory
    assert made.apply(settings).rate_limit_dir == made.directory
    assert Settings.from_environ(os.environ).rate_limit_dir == made.directory  # what `gunicorn wsgi:app` workers read
    made.stop()
    assert not os.path.exists(made.directory)

    given = NodeCounters()
    given.prepare(Settings(data_dir=tmp_path, rate_limit_dir=str(tmp_path / "rl")))
    given.stop()
    assert (tmp_path / "rl").is_dir()


def test_threads_of_one_process_count_exactly(tmp_path: pathlib.Path) -> None:
    # gthread workers: several threads of one process share its one LMDB environment.
    fresh_window()
    limiter = SlidingWindowCounterRateLimiter(NodeStorage(str(tmp_path / "counters")))
    item = RateLimitItemPerMinute(500)
    allowed: list[int] = []
    threads = [
        threading.Thread(target=lambda: allowed.append(sum(limiter.hit(item, KEY) for _ in range(200))))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(allowed) == 500, allowed
