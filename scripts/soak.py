#!/usr/bin/env python3
"""Soak test: mixed traffic against a real `coderapi server` for a long while, checking every answer.

Starts `coderapi server` (gunicorn, 2 sync workers by default) on a free loopback port with its own
database (a fresh PostgreSQL database on the local server by default, or the embedded SQLite file),
creates one user with a token per client plus an owner, and runs `--concurrency` clients (threads
spread over a few processes) for `--duration` seconds. Each client sends a fixed, weighted mix of the
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
import datetime
import http.client
import json
import multiprocessing
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from typing import Any

from benchreport import machine, write_section

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("CODERAPI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server ------------------------------------------------------------------------------------


class Server:
    def __init__(self, args: argparse.Namespace, workdir: pathlib.Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.db_name = ""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CODER_", "CODERAPI_"))}
        env.update(
            CODERAPI_DATA_DIR=str(workdir / "data"),
            CODERAPI_WORKERS=str(args.workers),
            CODERAPI_UPDATE_CHECK_URL="http://127.0.0.1:9/releases/latest",  # loopback only
            CODER_AGENT_STATS_REFRESH_INTERVAL="10s",
        )
        if args.database == "postgres":
            import psycopg

            self.db_name = f"coderapi_soak_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.db_name}"')
            env["CODER_PG_CONNECTION_URL"] = PG_ADMIN_URL.rpartition("/")[0] + "/" + self.db_name
        self.env = env
        self.log = open(workdir / "server.out", "wb")  # noqa: SIM115 (closed in stop)
        self.proc: subprocess.Popen[bytes] | None = None

    def seed(self, members: int) -> tuple[tuple[str, str], list[tuple[str, str]]]:
        """An owner and `members` members, each with a token: ((id, token), [(id, token), ...])."""
        from coderapi import apikey
        from coderapi.config import load
        from coderapi.config.settings import Settings
        from coderapi.database.open import open_store

        store = open_store(load((), self.env), Settings.from_environ(self.env))
        try:
            store.migrate()
            lifetime = datetime.timedelta(days=1)
            owner = store.insert_user("soak-owner", "soak-owner@example.com", ["owner"])
            owner_pair = (str(owner.id), apikey.issue(store, owner.id, lifetime))
            pairs = []
            for i in range(members):
                user = store.insert_user(f"soak-{i}", f"soak-{i}@example.com", [])
                pairs.append((str(user.id), apikey.issue(store, user.id, lifetime)))
            return owner_pair, pairs
        finally:
            store.close()

    def start(self) -> None:
        exe = str(pathlib.Path(sys.executable).parent / "coderapi")
        argv = [exe, "server", "--http-address", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(
            argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("server exited during startup; see " + str(self.workdir / "server.out"))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                    if resp.status == 200 and len(self.workers()) == int(self.env["CODERAPI_WORKERS"]):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("server not ready after 60 s")

    def workers(self) -> list[int]:
        assert self.proc is not None
        path = pathlib.Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return sorted(int(p) for p in path.read_text().split()) if path.exists() else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()
        if self.db_name:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


def rss_kib(pid: int) -> int:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- the clients -----------------------------------------------------------------------------------


def schedule() -> list[tuple[str, str, str, int]]:
    """The mix as a repeating sequence, weights spread out (deterministic)."""
    slots: list[tuple[float, tuple[str, str, str, int]]] = []
    for weight, method, path, who, status in MIX:
        for k in range(weight):
            slots.append(((k + 0.5) / weight, (method, path, who, status)))
    return [item for _pos, item in sorted(slots, key=lambda s: s[0])]


def client_process(
    port: int, deadline: float, warmup_end: float, threads: int, creds: list[dict[str, str]], offset: int
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


# --- reporting -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of traffic (default 300)")
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before the RSS baseline (default 30)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--processes", type=int, default=4, help="client processes sharing the concurrency")
    ap.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--write", action="store_true", help="write the Soak section of BENCHMARKS.md")
    ap.add_argument("--output", type=pathlib.Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args()
    if args.warmup >= args.duration:
        ap.error("--warmup must be shorter than --duration")

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="coderapi-soak-"))
    server = Server(args, workdir)
    started = datetime.datetime.now(datetime.UTC)
    try:
        owner, members = server.seed(args.concurrency)
        server.start()
        workers_at_start = server.workers()
        creds = [{"id": uid, "token": tok, "owner_id": owner[0], "owner_token": owner[1]} for uid, tok in members]
        # Let the stats cache compute once, so the owner's /deployment/stats is a 200 from the start.
        deadline_ready = time.monotonic() + 60
        while time.monotonic() < deadline_ready:
            req = urllib.request.Request(
                f"http://127.0.0.1:{server.port}/api/v2/deployment/stats", headers={TOKEN_HEADER: owner[1]}
            )
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (loopback http URL)
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.2)

        t0 = time.time()
        deadline = t0 + args.duration
        warmup_end = t0 + args.warmup
        per = [
            args.concurrency // args.processes + (1 if i < args.concurrency % args.processes else 0)
            for i in range(args.processes)
        ]
        jobs = []
        first = 0
        for i, n in enumerate(per):
            jobs.append((server.port, deadline, warmup_end, n, creds[first : first + n], i * 1000))
            first += n

        samples: list[tuple[float, dict[int, int]]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.time() - t0, {pid: rss_kib(pid) for pid in server.workers()}))
                stop.wait(5.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.processes) as pool:
            results = pool.map(_client_entry, jobs)
        stop.set()
        sampler.join()
        workers_at_end = server.workers()
        final_rss = {pid: rss_kib(pid) for pid in workers_at_end}
    finally:
        server.stop()
        log_tail = (
            (workdir / "server.out").read_text(errors="replace")[-4000:] if (workdir / "server.out").exists() else ""
        )
        shutil.rmtree(workdir, ignore_errors=True)

    totals: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    for r in results:
        totals.update(r["totals"])
        unexpected.update(r["unexpected"])
        errors.update(r["errors"])
        latencies.extend(r["latencies"])
    latencies.sort()
    requests = sum(totals.values())
    elapsed = args.duration

    baseline: dict[int, int] = {}
    for at, rss in samples:
        if at >= args.warmup:
            baseline = rss
            break
    peak = {pid: max((rss.get(pid, 0) for _at, rss in samples), default=0) for pid in workers_at_start}
    growth = {
        pid: (final_rss.get(pid, 0) - baseline.get(pid, 0)) / baseline[pid] if baseline.get(pid) else float("nan")
        for pid in workers_at_start
    }
    replaced = workers_at_start != workers_at_end
    worst_growth = max(growth.values()) if growth else float("nan")

    ok_statuses = not unexpected and not errors
    ok_rss = bool(growth) and all(g < RSS_GROWTH_LIMIT for g in growth.values()) and not replaced
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
        f"| {requests:,} | {requests / elapsed:,.0f} | {sum(unexpected.values())} | {sum(errors.values())} |"
        f" {percentile(latencies, 50) * 1000:.1f} / {percentile(latencies, 95) * 1000:.1f} /"
        f" {percentile(latencies, 99) * 1000:.1f} / {(latencies[-1] if latencies else 0) * 1000:.1f} |",
        "",
        "Statuses: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(totals.items())) + ".",
        "",
        f"| worker | RSS after warm-up ({args.warmup:g} s) | RSS at end | peak | growth |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n, pid in enumerate(workers_at_start, 1):
        lines.append(
            f"| {n} | {baseline.get(pid, 0) / 1024:.1f} MiB | {final_rss.get(pid, 0) / 1024:.1f} MiB |"
            f" {peak.get(pid, 0) / 1024:.1f} MiB | {growth.get(pid, float('nan')) * 100:+.1f}% |"
        )
    lines += [
        "",
        f"- Zero unexpected statuses and transport errors: **{'met' if ok_statuses else 'MISSED'}**"
        + ("" if ok_statuses else f" ({dict(unexpected) or ''} {dict(errors) or ''})"),
        f"- Worker RSS growth under 10%: **{'met' if ok_rss else 'MISSED'}** (worst {worst_growth * 100:+.1f}%"
        + (", a worker was replaced" if replaced else "")
        + ")",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(args.output, "## Soak", section)
    if not (ok_statuses and ok_rss):
        print(log_tail, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
