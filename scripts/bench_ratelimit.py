#!/usr/bin/env python3
"""The in-process cost of one rate-limit counter hit: `limits`' MemoryStorage (per process, what the
limiter used before one budget per node) against the node's shared store (LMDB), side by side in one run.

A hit is what the limiter does per request: the sliding-window `hit` plus `get_window_stats` for the
remaining count. Measured on one key (the worst case: every hit writes the same counter), on many keys,
and with several processes hitting one key at once (the writer lock shared by a node's workers).
Writes the "Rate limit counter" section of BENCHMARKS.md (other sections are kept).

    .venv/bin/python scripts/bench_ratelimit.py [--hits 20000] [--processes 4] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import pathlib
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from benchreport import machine, write_section
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter

from coderapi.httpmw.nodestore import NodeStorage, default_parent

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADING = "## Rate limit counter"
# High enough that no hit is refused: every hit is a write, as for a client within its budget.
LIMIT = 1_000_000_000
ROUNDS = 3


def us_per_hit(storage: Storage, hits: int, keys: int) -> float:
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = RateLimitItemPerMinute(LIMIT)
    names = [f"127.0.0.{i % 250}:/api/v2/buildinfo/{i}:" for i in range(keys)]
    for name in names:  # warm: the counters exist
        limiter.hit(item, name)
    began = time.perf_counter()
    for i in range(hits):
        name = names[i % keys]
        limiter.hit(item, name)
        limiter.get_window_stats(item, name)
    return (time.perf_counter() - began) / hits * 1e6


def _contend(directory: str, hits: int, start: Any, out: Any) -> None:
    storage: NodeStorage | MemoryStorage = NodeStorage(directory) if directory else MemoryStorage()
    start.wait(60)
    out.put(us_per_hit(storage, hits, 1))
    if isinstance(storage, NodeStorage):
        storage.close()
    else:
        storage.timer.cancel()


def contended_us_per_hit(directory: str, hits: int, processes: int) -> float:
    """Mean µs per hit of `processes` processes hitting one key at once: of one node store, or each of
    its own MemoryStorage when `directory` is "" (what sharing the CPUs alone costs)."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(directory, hits, start, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    start.wait(60)
    results: list[float] = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(30)
    return sum(results) / len(results)


def measure(hits: int, processes: int) -> list[tuple[str, float, float]]:
    """Rows of (case, MemoryStorage µs/hit, node store µs/hit)."""
    rows: list[tuple[str, float, float]] = []
    work = tempfile.mkdtemp(prefix="coderapi-bench-ratelimit-", dir=default_parent())
    try:
        for name, keys in (("one key", 1), ("1,000 keys", 1000)):
            memory = MemoryStorage()
            node = NodeStorage(f"{work}/{keys}")
            # Alternating rounds, so drift on a shared machine hits both alike; the best round of each.
            old, new = float("inf"), float("inf")
            for _ in range(ROUNDS):
                old = min(old, us_per_hit(memory, hits, keys))
                new = min(new, us_per_hit(node, hits, keys))
            memory.timer.cancel()
            node.close()
            rows.append((name, old, new))
        old = contended_us_per_hit("", hits, processes)
        new = contended_us_per_hit(f"{work}/contended", hits, processes)
        rows.append((f"one key, {processes} processes at once (µs per hit in each)", old, new))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def report(rows: list[tuple[str, float, float]], hits: int) -> str:
    lines = [
        HEADING,
        "",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC by "
        f"`scripts/bench_ratelimit.py --hits {hits}` (also run by `make bench`), in process: µs per counted "
        "request (`hit` + `get_window_stats`, as the limiter does), `limits`' MemoryStorage (each worker "
        "its own budget, before) against the node's shared LMDB store (one budget per node), side by side.",
        "",
        f"Machine: {machine()}.",
        "",
        "| case | MemoryStorage µs/hit | node store µs/hit |",
        "| --- | ---: | ---: |",
    ]
    for name, old, new in rows:
        lines.append(f"| {name} | {old:.1f} | {new:.1f} |")
    lines += [
        "",
        "With more processes than CPUs, the MemoryStorage figure of the last row is what sharing the CPUs "
        "costs; the rest of the node store's is waiting for its one writer lock (the worst case: every hit "
        "on one counter). `make bench`'s limiter-on cases give the cost per HTTP request.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hits", type=int, default=20_000, help="hits per measurement (default 20000)")
    ap.add_argument("--processes", type=int, default=4, help="processes for the contended case (default 4)")
    ap.add_argument("--output", type=pathlib.Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args(argv)
    section = report(measure(args.hits, args.processes), args.hits)
    write_section(args.output, HEADING, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
