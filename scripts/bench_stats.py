#!/usr/bin/env python3
"""Deployment-stats and update-check benchmarks on PostgreSQL: refresh time and endpoint latency.

In a database of its own (created and dropped here) it seeds a small deployment, then a large one
(100,000 workspaces and 1,000,000 agent-stat rows by default, all inside the 15-minute window, the
worst case), and for each measures:

- one full refresh of the stats (the three queries, run as the cache runs them), several times;
- each query on its own;
- GET /api/v2/deployment/stats with an owner token over HTTP, which must not grow with the data
  since it answers from the cache.

Then GET /api/v2/updatecheck with the release feed down (a closed port) and hanging (a server that
accepts and never answers): it must answer 200 `current: true` at once.

Targets (issue 5): a refresh at the large size under 2 s (median of the timed refreshes); endpoint
latency flat between the sizes; /updatecheck with the feed down well under 100 ms. Writes the
"Deployment stats and update check" section of BENCHMARKS.md (other sections are kept). Exit status
1 when a target is missed.

    .venv/bin/python scripts/bench_stats.py [--workspaces 100000] [--agent-stats 1000000] [--output BENCHMARKS.md]

PostgreSQL: CODERAPI_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test) is the database
used to create and drop the benchmark's own.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import logging
import os
import pathlib
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from benchreport import machine, write_section
from flask import Flask
from sqlalchemy import text
from werkzeug.serving import make_server

from coderapi.app import create_app, shutdown
from coderapi.cli.dev import SeedPlan, seed_store
from coderapi.config import load
from coderapi.config.settings import Settings
from coderapi.database import Store
from coderapi.database.tables import metadata
from coderapi.runtime import EXTENSION_KEY, Runtime
from coderapi.services.statscache import WINDOW, DeploymentStatsCache
from coderapi.testing import add_users, free_port, pg_database

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTION = "## Deployment stats and update check"
REFRESH_TARGET_S = 2.0
UPDATECHECK_TARGET_MS = 100.0
# Endpoint latency counts as flat when the large p50 is within this factor (plus a small absolute
# allowance for timer noise) of the small one.
FLAT_FACTOR = 1.5
FLAT_SLACK_MS = 0.5


@dataclasses.dataclass
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float

    def row(self) -> str:
        return f"{self.p50_ms:.2f} / {self.p95_ms:.2f} / {self.p99_ms:.2f} / {self.mean_ms:.2f}"


@dataclasses.dataclass
class Phase:
    name: str
    workspaces: int
    agent_stats: int
    seed_s: float
    refresh_s: list[float]
    usage_refresh_s: float
    queries_s: dict[str, float]
    endpoint: Latency
    load: float  # the 1-minute load average while the refreshes ran


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(samples_s: Sequence[float]) -> Latency:
    ms = [s * 1000 for s in samples_s]
    return Latency(percentile(ms, 0.5), percentile(ms, 0.95), percentile(ms, 0.99), statistics.fmean(ms))


@contextmanager
def served(app: Flask) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    return resp.status, body, time.perf_counter() - started


def measure(port: int, path: str, headers: dict[str, str], n: int, check: Callable[[int, bytes], None]) -> Latency:
    for _ in range(min(50, n)):  # warm-up
        get(port, path, headers)
    samples = []
    for _ in range(n):
        status, body, took = get(port, path, headers)
        check(status, body)
        samples.append(took)
    return latency(samples)


def runtime_of(app: Flask) -> Runtime:
    rt: Runtime = app.extensions[EXTENSION_KEY]
    return rt


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def truncate(store: Store) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables if t.name in _STATS_TABLES)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
        conn.execute(text("DELETE FROM site_configs WHERE key LIKE 'deployment_stats%'"))


_STATS_TABLES = {"workspaces", "provisioner_jobs", "workspace_builds", "workspace_agents", "workspace_agent_stats"}


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_phase(
    name: str,
    store: Store,
    token: str,
    settings: Settings,
    args: argparse.Namespace,
    size: tuple[int, int],
    respread: dt.timedelta | None = None,
) -> Phase:
    """Seed `size` (workspaces, agent stats) afresh, or with `respread` move the rows already there
    to random times over that span before now, then measure."""
    workspaces, agent_stats = size
    seed_s = 0.0
    if respread is None:
        truncate(store)
        plan = SeedPlan(workspaces, agent_stats, dt.timedelta(minutes=args.span), dt.datetime.now(dt.UTC), seed=42)
        seed_s = seed_store(store, plan).seconds
    else:
        started = time.perf_counter()
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE workspace_agent_stats SET created_at = now() - random() * make_interval(secs => :s)"),
                {"s": respread.total_seconds()},
            )
            conn.execute(text("DELETE FROM site_configs WHERE key LIKE 'deployment_stats%'"))
        seed_s = time.perf_counter() - started
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"[{name}] seeded {workspaces} workspaces and {agent_stats} agent stats in {seed_s:.1f}s", flush=True)

    cache = DeploymentStatsCache(store, dt.timedelta(seconds=30), usage=False)
    refresh = [timed(cache.compute) for _ in range(args.refreshes)]
    load_avg = os.getloadavg()[0]
    usage_refresh = timed(DeploymentStatsCache(store, dt.timedelta(seconds=30), usage=True).compute)
    now = dt.datetime.now(dt.UTC)
    since = now - WINDOW
    queries = {
        "workspace buckets": timed(lambda: store.get_deployment_workspace_stats(now)),
        "agent traffic + sessions": timed(lambda: store.get_deployment_workspace_agent_stats(since)),
        "usage variant (traffic + sessions)": timed(
            lambda: store.get_deployment_workspace_agent_usage_stats(since, now)
        ),
    }
    print(f"[{name}] refresh {', '.join(f'{s:.3f}' for s in refresh)} s; usage {usage_refresh:.3f} s", flush=True)

    values = load(("--dangerous-disable-rate-limits", "--update-check=false", "--log-human=/dev/null"), {})
    app = create_app(values, store, settings)
    try:
        stats_cache = runtime_of(app).stats
        wait_for(lambda: stats_cache.body() is not None, 120, "the first stats value")

        def ok(status: int, body: bytes) -> None:
            if status != 200 or not body.startswith(b'{"aggregated_from":'):
                raise SystemExit(f"/deployment/stats answered {status}: {body[:200]!r}")

        with served(app) as port:
            endpoint = measure(port, "/api/v2/deployment/stats", {"Coder-Session-Token": token}, args.requests, ok)
    finally:
        shutdown(app)
    print(f"[{name}] endpoint p50 {endpoint.p50_ms:.2f} ms p99 {endpoint.p99_ms:.2f} ms", flush=True)
    return Phase(name, workspaces, agent_stats, seed_s, refresh, usage_refresh, queries, endpoint, load_avg)


@contextmanager
def hanging_feed() -> Iterator[str]:
    """A server that accepts connections and never answers them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/releases/latest"
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def update_check_latency(store: Store, settings: Settings, feed_url: str, requests: int) -> Latency:
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM site_configs WHERE key IN ('last_update_check', 'update_check')"))
    values = load(("--dangerous-disable-rate-limits", "--update-check=true", "--log-human=/dev/null"), {})
    app = create_app(values, store, dataclasses.replace(settings, update_check_url=feed_url))

    def ok(status: int, body: bytes) -> None:
        if status != 200 or not body.startswith(b'{"current":true,'):
            raise SystemExit(f"/updatecheck answered {status}: {body[:200]!r}")

    try:
        with served(app) as port:
            return measure(port, "/api/v2/updatecheck", {}, requests, ok)
    finally:
        shutdown(app)


def pg_version(store: Store) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(text("SHOW server_version")).scalar_one())


def report(args: argparse.Namespace, phases: list[Phase], down: Latency, hanging: Latency, pg: str) -> tuple[str, bool]:
    small, large, _typical = phases
    refresh_ok = statistics.median(large.refresh_s) < REFRESH_TARGET_S
    flat_ok = large.endpoint.p50_ms <= small.endpoint.p50_ms * FLAT_FACTOR + FLAT_SLACK_MS
    update_ok = max(down.p99_ms, hanging.p99_ms) < UPDATECHECK_TARGET_MS
    verdict = {True: "met", False: "MISSED"}
    lines = [
        SECTION,
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}, PostgreSQL {pg}, shared with "
        "other work (numbers are wall-clock).",
        "",
        "```",
        ".venv/bin/python scripts/bench_stats.py "
        + f"--workspaces {args.workspaces} --agent-stats {args.agent_stats} --span {args.span:g}",
        "```",
        "",
        f"Agent-stat rows are spread over the last {args.span:g} minutes, so all of them fall in the 15-minute "
        "window (the worst case); the last row moves the same rows to random times over 24 hours (about 1% in "
        "the window, closer to a real deployment). Refresh = the three queries as the cache runs them "
        "(concurrently, one connection each); the endpoint is measured over HTTP (werkzeug server "
        f"in-process, one connection per request, {args.requests} requests after a warm-up), owner token, "
        "rate limits off.",
        "",
        "| data | seed | refresh min / median / max | usage-variant refresh | load avg | "
        "endpoint p50 / p95 / p99 / mean (ms) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in phases:
        r = sorted(p.refresh_s)
        spread = "over 24 h" if p is phases[-1] else f"over {args.span:g} min"
        lines.append(
            f"| {p.workspaces:,} workspaces, {p.agent_stats:,} agent stats {spread} | {p.seed_s:.1f} s | "
            f"{r[0]:.3f} / {statistics.median(r):.3f} / {r[-1]:.3f} s | {p.usage_refresh_s:.3f} s | {p.load:.1f} | "
            f"{p.endpoint.row()} |"
        )
    lines += [
        "",
        "Each query alone at the large size (sequential, one connection): "
        + "; ".join(f"{k} {v:.3f} s" for k, v in large.queries_s.items())
        + ".",
        "",
        "| GET /api/v2/updatecheck | p50 / p95 / p99 / mean (ms) |",
        "| --- | --- |",
        f"| feed down (closed port) | {down.row()} |",
        f"| feed hanging (accepts, never answers; the checker waits up to 30 s) | {hanging.row()} |",
        "",
        f"- Refresh under {REFRESH_TARGET_S:g} s at the large size (median of {len(large.refresh_s)}): "
        f"**{verdict[refresh_ok]}** (median {statistics.median(large.refresh_s):.3f} s, slowest "
        f"{max(large.refresh_s):.3f} s).",
        f"- Endpoint latency flat with the data: **{verdict[flat_ok]}** (p50 {small.endpoint.p50_ms:.2f} ms small, "
        f"{large.endpoint.p50_ms:.2f} ms large).",
        f"- /updatecheck with the feed down under {UPDATECHECK_TARGET_MS:g} ms: **{verdict[update_ok]}** "
        f"(p99 {max(down.p99_ms, hanging.p99_ms):.2f} ms).",
        "",
        "What made the refresh fast enough (first attempt, the three queries in one sequential pass: about "
        "3.3 s): sessions from each agent's newest row with `DISTINCT ON` instead of `ROW_NUMBER()` (same row, "
        "half the sort work), rx/tx and the percentiles in one scan, `SET LOCAL jit = off` (JIT compilation "
        "cost 0.2 s per query and saved nothing), `work_mem = 128MB` for these queries only (their sorts "
        "stay in memory), no parallel workers (a parallel hash join rebuilt the same hash table in every "
        "worker: the usage variant went from 1.8 s to 0.9 s without them), and the three queries running at "
        "once on their own connections. On an idle machine a large refresh takes about 1.0 to 1.1 s; with "
        "other work on the two cores it takes longer, as the table shows. The existing "
        "indexes (`workspace_builds (workspace_id, build_number)`, `workspace_agent_stats (created_at)` and "
        "`(agent_id, created_at)`) serve the plans; a covering index on builds did not help, so no new "
        "migration. With several workers only one computes per interval (a lease in `site_configs`), the "
        "others adopt its result.",
        "",
    ]
    return "\n".join(lines), refresh_ok and flat_ok and update_ok


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--workspaces", type=int, default=100_000)
    ap.add_argument("--agent-stats", type=int, default=1_000_000)
    ap.add_argument("--small-workspaces", type=int, default=100)
    ap.add_argument("--small-agent-stats", type=int, default=1_000)
    ap.add_argument("--span", type=float, default=14.0, help="minutes the agent stats are spread over (default 14)")
    ap.add_argument("--refreshes", type=int, default=5, help="timed refreshes per size (default 5)")
    ap.add_argument("--requests", type=int, default=2000, help="timed endpoint requests per size (default 2000)")
    ap.add_argument("--output", type=pathlib.Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args(argv)
    # werkzeug's access log would print every timed request.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    with pg_database("coderapi_bench_stats") as url:
        store = Store(url, pool_size=10)
        try:
            store.migrate()
            token = add_users(store, [("owner", ["owner"])], dt.timedelta(days=1))["owner"][1]
            # PostgreSQL holds the data; the settings' directory is never written.
            settings = Settings(data_dir=pathlib.Path(tempfile.gettempdir()) / f"coderapi-bench-{uuid.uuid4().hex[:8]}")
            phases = [
                run_phase("small", store, token, settings, args, (args.small_workspaces, args.small_agent_stats)),
                run_phase("large", store, token, settings, args, (args.workspaces, args.agent_stats)),
                run_phase(
                    "large, rows over 24 h",
                    store,
                    token,
                    settings,
                    args,
                    (args.workspaces, args.agent_stats),
                    respread=dt.timedelta(hours=24),
                ),
            ]
            down = update_check_latency(
                store, settings, f"http://127.0.0.1:{free_port()}/releases/latest", args.requests
            )
            with hanging_feed() as feed_url:
                hanging = update_check_latency(store, settings, feed_url, args.requests)
            section, ok = report(args, phases, down, hanging, pg_version(store))
        finally:
            store.close()
    write_section(args.output, SECTION, section)
    print(section)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
