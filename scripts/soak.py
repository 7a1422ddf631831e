#!/usr/bin/env python3
"""Soak test: mixed traffic against a real `coderapi server` for a long while, checking every answer.

Starts `coderapi server` (gunicorn, 2 sync workers by default) on a free loopback port with its own
database (by default a fresh PostgreSQL database on the server of CODERAPI_TEST_PG_URL, or the embedded
SQLite file), creates one user with a token per client plus an owner, and runs `--concurrency` clients
(threads spread over a few processes) for `--duration` seconds. Each client sends a fixed, weighted mix of the
API's requests: every operation, as owner and as member, CSP reports, a few anonymous and unknown-path
requests. Every answer is compared with the status that request must get; anything else is an
"unexpected status". Worker RSS is sampled throughout; growth is measured from the end of the warm-up
to the end of the run.

Exit status 1 when there was any unexpected status or transport error, a worker was replaced, or
worker RSS grew by 10% or more. With `--write` the "Soak" section of BENCHMARKS.md is replaced (other
sections are kept).

    .venv/bin/python scripts/soak.py [--duration 300] [--concurrency 64] [--workers 2]
                                     [--database postgres|sqlite] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import json
import multiprocessing
import pathlib
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from benchreport import machine, rss_kib, write_section

from coderapi.testing import ServerProcess, child_env, pg_database, seed_users

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN_HEADER = "Coder-Session-Token"  # noqa: S105 (a header name)
RSS_GROWTH_LIMIT = 0.10
CSP_REPORT = json.dumps(
    {
        "csp-report": {
            "document-uri": "https://coder.example.com/workspaces",
            "violated-directive": "script-src 'self'",
            "blocked-uri": "https://cdn.example.net/x.js",
            "status-code": 200,
        }
    }
).encode()

# (weight, method, path, who, expected status). `who`: owner, member (the client's own user), anonymous.
MIX: list[tuple[int, str, str, str, int]] = [
    (10, "GET", "/api/v2/buildinfo", "member", 200),
    (4, "GET", "/api/v2/", "member", 200),
    (6, "GET", "/api/v2/updatecheck", "member", 200),
    (8, "GET", "/api/v2/deployment/ssh", "member", 200),
    (8, "GET", "/api/v2/experiments", "member", 200),
    (4, "GET", "/api/v2/experiments/available", "member", 200),
    (10, "GET", "/api/v2/users/me/keys/tokens/tokenconfig", "member", 200),
    (4, "GET", "/api/v2/users/{owner}/keys/tokens/tokenconfig", "member", 400),
    (3, "GET", "/api/v2/deployment/config", "member", 403),
    (3, "GET", "/api/v2/deployment/stats", "member", 403),
    (6, "POST", "/api/v2/csp/reports", "member", 200),
    (2, "GET", "/api/v2/nope", "member", 404),
    (2, "PUT", "/api/v2/buildinfo", "member", 405),
    (2, "GET", "/api/v2/deployment/config", "owner", 200),
    (2, "GET", "/api/v2/deployment/stats", "owner", 200),
    (2, "GET", "/api/v2/users/{member}/keys/tokens/tokenconfig", "owner", 200),
    # Anonymous requests are limited per (client IP, path): spread over paths under an authenticated
    # prefix (401 before routing), so a fast machine stays under 512 a minute per path.
    (1, "GET", "/api/v2/deployment/probe-{n}", "anonymous", 401),
]
ANONYMOUS_PATHS = 64
# Each client's credentials: its member's id and token, the owner's id and token.
Creds = list[dict[str, str]]
SERVER_STOP_TIMEOUT = 40.0


# --- the server ------------------------------------------------------------------------------------


def server_env(args: argparse.Namespace, workdir: pathlib.Path, pg_url: str) -> dict[str, str]:
    env = {
        "CODERAPI_DATA_DIR": str(workdir / "data"),
        "CODERAPI_WORKERS": str(args.workers),
        "CODER_AGENT_STATS_REFRESH_INTERVAL": "10s",
    }
    if pg_url:
        env["CODER_PG_CONNECTION_URL"] = pg_url
    return child_env(env, update_check=True)


def seed(env: dict[str, str], members: int) -> Creds:
    """An owner and `members` members with a token each: one client's credentials per member."""
    names = [f"soak-{i}" for i in range(members)]
    users = seed_users(env, [("soak-owner", ["owner"]), *((n, []) for n in names)], datetime.timedelta(days=1))
    owner_id, owner_token = users["soak-owner"]
    return [{"id": users[n][0], "token": users[n][1], "owner_id": owner_id, "owner_token": owner_token} for n in names]


def wait_workers(server: ServerProcess, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(server.children()) != count:
        if time.monotonic() > deadline or not server.alive():
            raise SystemExit(f"{count} workers not running after {timeout:g} s; see {server.log}")
        time.sleep(0.2)


@contextlib.contextmanager
def soak_server(args: argparse.Namespace, workdir: pathlib.Path) -> Iterator[tuple[ServerProcess, Creds]]:
    """`coderapi server` on its own database with its users seeded, every worker up: (server, credentials)."""
    with contextlib.ExitStack() as stack:
        pg_url = stack.enter_context(pg_database("coderapi_soak")) if args.database == "postgres" else ""
        env = server_env(args, workdir, pg_url)
        creds = seed(env, args.concurrency)
        server = ServerProcess([], env, workdir / "server.out")
        stack.callback(server.stop, SERVER_STOP_TIMEOUT)
        server.wait_ready(60)
        wait_workers(server, args.workers, 60)
        yield server, creds


def wait_for_stats(server: ServerProcess, owner_token: str, timeout: float = 60) -> None:
    """Until the stats cache has computed once, so the owner's /deployment/stats is a 200 from the start."""
    url = server.url + "/api/v2/deployment/stats"
    req = urllib.request.Request(url, headers={TOKEN_HEADER: owner_token})  # noqa: S310 (loopback http URL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (loopback http URL)
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)


# --- the clients -----------------------------------------------------------------------------------


def schedule() -> list[tuple[str, str, str, int]]:
    """The mix as a repeating sequence, weights spread out (deterministic)."""
    slots: list[tuple[float, tuple[str, str, str, int]]] = []
    for weight, method, path, who, status in MIX:
        for k in range(weight):
            slots.append(((k + 0.5) / weight, (method, path, who, status)))
    return [item for _pos, item in sorted(slots, key=lambda s: s[0])]


def client_process(
    port: int, deadline: float, warmup_end: float, threads: int, creds: Creds, offset: int
) -> dict[str, Any]:
    """`threads` clients in one process until `deadline`; their counts and latencies."""
    plan = schedule()
    lock = threading.Lock()
    totals: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []

    def run(n: int) -> None:
        me = creds[n]
        i = (offset + n) * 7
        local_lat: list[float] = []
        local_totals: Counter[str] = Counter()
        local_unexpected: Counter[str] = Counter()
        local_errors: Counter[str] = Counter()
        while True:
            now = time.time()
            if now >= deadline:
                break
            method, path, who, expected = plan[i % len(plan)]
            i += 1
            path = path.format(owner=me["owner_id"], member=me["id"], n=i % ANONYMOUS_PATHS)
            headers = {}
            if who == "owner":
                headers[TOKEN_HEADER] = me["owner_token"]
                # The one owner is shared by every client: the bypass header keeps its limit out of the way.
                headers["X-Coder-Bypass-Ratelimit"] = "true"
            elif who == "member":
                headers[TOKEN_HEADER] = me["token"]
            body = CSP_REPORT if method == "POST" else None
            if body is not None:
                headers["Content-Type"] = "application/csp-report"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            start = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as err:
                local_errors[type(err).__name__] += 1
                continue
            finally:
                conn.close()
            took = time.perf_counter() - start
            local_totals[str(status)] += 1
            if status != expected:
                local_unexpected[f"{method} {path} as {who}: {status} (expected {expected})"] += 1
            if now >= warmup_end:
                local_lat.append(took)
        with lock:
            totals.update(local_totals)
            unexpected.update(local_unexpected)
            errors.update(local_errors)
            latencies.extend(local_lat)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {"totals": dict(totals), "unexpected": dict(unexpected), "errors": dict(errors), "latencies": latencies}


def _client_entry(args: tuple[Any, ...]) -> dict[str, Any]:
    return client_process(*args)


# --- the run ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What the clients saw and the workers' memory over the run."""

    totals: Counter[str]
    unexpected: Counter[str]
    errors: Counter[str]
    latencies: list[float]  # seconds, sorted
    samples: list[tuple[float, dict[int, int]]]  # (seconds into the run, worker pid -> RSS KiB)
    workers_at_start: list[int]
    workers_at_end: list[int]
    final_rss: dict[int, int]


def client_jobs(args: argparse.Namespace, port: int, creds: Creds, t0: float) -> list[tuple[Any, ...]]:
    """One job per client process, the concurrency spread over them."""
    per = [
        args.concurrency // args.processes + (1 if i < args.concurrency % args.processes else 0)
        for i in range(args.processes)
    ]
    jobs: list[tuple[Any, ...]] = []
    first = 0
    for i, n in enumerate(per):
        jobs.append((port, t0 + args.duration, t0 + args.warmup, n, creds[first : first + n], i * 1000))
        first += n
    return jobs


def drive(args: argparse.Namespace, server: ServerProcess, creds: Creds) -> Run:
    """The clients' traffic for `args.duration` seconds, sampling worker RSS every 5 s."""
    workers_at_start = server.children()
    t0 = time.time()
    samples: list[tuple[float, dict[int, int]]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time() - t0, {pid: rss_kib(pid) for pid in server.children()}))
            stop.wait(5.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with multiprocessing.get_context("fork").Pool(args.processes) as pool:
        results = pool.map(_client_entry, client_jobs(args, server.port, creds, t0))
    stop.set()
    sampler.join()
    workers_at_end = server.children()
    final_rss = {pid: rss_kib(pid) for pid in workers_at_end}
    run = Run(Counter(), Counter(), Counter(), [], samples, workers_at_start, workers_at_end, final_rss)
    for r in results:
        run.totals.update(r["totals"])
        run.unexpected.update(r["unexpected"])
        run.errors.update(r["errors"])
        run.latencies.extend(r["latencies"])
    run.latencies.sort()
    return run


# --- reporting -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def rss_growth(run: Run, warmup: float) -> tuple[dict[int, int], dict[int, int], dict[int, float]]:
    """Per worker there from the start: RSS after the warm-up, peak RSS, growth from the one to the end."""
    baseline: dict[int, int] = next((rss for at, rss in run.samples if at >= warmup), {})
    peak = {pid: max((rss.get(pid, 0) for _at, rss in run.samples), default=0) for pid in run.workers_at_start}
    growth = {
        pid: (run.final_rss.get(pid, 0) - baseline.get(pid, 0)) / baseline[pid] if baseline.get(pid) else float("nan")
        for pid in run.workers_at_start
    }
    return baseline, peak, growth


def report(args: argparse.Namespace, started: datetime.datetime, run: Run) -> tuple[bool, str]:
    """Whether the run met its targets, and the "Soak" section of BENCHMARKS.md."""
    baseline, peak, growth = rss_growth(run, args.warmup)
    replaced = run.workers_at_start != run.workers_at_end
    worst_growth = max(growth.values()) if growth else float("nan")
    ok_statuses = not run.unexpected and not run.errors
    ok_rss = bool(growth) and all(g < RSS_GROWTH_LIMIT for g in growth.values()) and not replaced
    requests = sum(run.totals.values())
    latencies = run.latencies
    command = (
        f".venv/bin/python scripts/soak.py --duration {args.duration:g} --concurrency {args.concurrency}"
        f" --workers {args.workers} --database {args.database}" + (" --write" if args.write else "")
    )
    lines = [
        "## Soak",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}; the clients run on the same machine as the"
        " server, and the two cores were shared with other work.",
        "",
        "```",
        command,
        "```",
        "",
        f"`coderapi server` with {args.workers} sync gunicorn workers on {args.database}"
        f" ({'a fresh database on the local PostgreSQL' if args.database == 'postgres' else 'the embedded file'});"
        f" {args.concurrency} clients (threads in {args.processes} processes, one new connection per request),"
        f" each its own member user with a token, for {args.duration:g} s. The mix: every operation as member"
        " (including the 403s on deployment config and stats, a 400 for another user's token config), owner"
        " calls with the rate-limit bypass, CSP reports, unknown paths (404), a wrong method (405) and"
        " anonymous calls (401). Every answer is checked against the status its request must get.",
        "",
        "| requests | req/s | unexpected statuses | transport errors | p50 / p95 / p99 / max latency (ms) |",
        "| --- | --- | --- | --- | --- |",
        f"| {requests:,} | {requests / args.duration:,.0f} | {sum(run.unexpected.values())} |"
        f" {sum(run.errors.values())} |"
        f" {percentile(latencies, 50) * 1000:.1f} / {percentile(latencies, 95) * 1000:.1f} /"
        f" {percentile(latencies, 99) * 1000:.1f} / {(latencies[-1] if latencies else 0) * 1000:.1f} |",
        "",
        "Statuses: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(run.totals.items())) + ".",
        "",
        f"| worker | RSS after warm-up ({args.warmup:g} s) | RSS at end | peak | growth |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n, pid in enumerate(run.workers_at_start, 1):
        lines.append(
            f"| {n} | {baseline.get(pid, 0) / 1024:.1f} MiB | {run.final_rss.get(pid, 0) / 1024:.1f} MiB |"
            f" {peak.get(pid, 0) / 1024:.1f} MiB | {growth.get(pid, float('nan')) * 100:+.1f}% |"
        )
    lines += [
        "",
        f"- Zero unexpected statuses and transport errors: **{'met' if ok_statuses else 'MISSED'}**"
        + ("" if ok_statuses else f" ({dict(run.unexpected) or ''} {dict(run.errors) or ''})"),
        f"- Worker RSS growth under 10%: **{'met' if ok_rss else 'MISSED'}** (worst {worst_growth * 100:+.1f}%"
        + (", a worker was replaced" if replaced else "")
        + ")",
        "",
    ]
    return ok_statuses and ok_rss, "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of traffic (default 300)")
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before the RSS baseline (default 30)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--processes", type=int, default=4, help="client processes sharing the concurrency")
    ap.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--write", action="store_true", help="write the Soak section of BENCHMARKS.md")
    ap.add_argument("--output", type=pathlib.Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.warmup >= args.duration:
        ap.error("--warmup must be shorter than --duration")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="coderapi-soak-"))
    started = datetime.datetime.now(datetime.UTC)
    try:
        with soak_server(args, workdir) as (server, creds):
            wait_for_stats(server, creds[0]["owner_token"])
            run = drive(args, server, creds)
    finally:
        out = workdir / "server.out"
        log_tail = out.read_text(errors="replace")[-4000:] if out.exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
    ok, section = report(args, started, run)
    print(section)
    if args.write:
        write_section(args.output, "## Soak", section)
    if not ok:
        print(log_tail, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
