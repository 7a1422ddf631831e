#!/usr/bin/env python3
"""HTTP benchmarks: wrk against the real server and a bare Flask app, side by side, one run.

The bare app is the floor: a Flask app with one view per benchmarked path that returns the bytes the
real server answered, served by gunicorn with exactly the options `coderapi server` uses (bind, workers,
worker class, threads, limits). Every ratio is real / bare. Rate limiting is off (`--dangerous-disable-
rate-limits`) except in the "limiter on" cases (`--api-rate-limit 1000000000`: every request counted in the
node's shared store, none refused), which measure what counting costs; logging stays on as in production
(human lines to stderr, here a file). The in-process cost of one counter hit is `scripts/bench_ratelimit.py`,
run at the end ("Rate limit counter" section).

Cases and targets (issue 6):
- GET /api/v2/buildinfo, no token                       req/s ratio >= 0.85
- GET /api/v2/deployment/ssh, member token, SQLite      req/s ratio >= 0.70
- GET /api/v2/deployment/ssh, member token, PostgreSQL  req/s ratio >= 0.72, within 0.03 of SQLite (issue 14)
- the same with PostgreSQL behind a proxy adding 1 ms each way (scripts/delayproxy.py)  ratio >= 0.70
- GET /api/v2/deployment/config, owner token (SQLite)   req/s ratio >= 0.50
- buildinfo and deployment/ssh (SQLite) with the limiter on: reported beside their limiter-off twins with
  the drop (issue 12 asks at most 0.02); informational, not a target: the limiter-off ratios are the ones
  the targets hold, and the in-process cost of the store itself is the "Rate limit counter" section
- every case: p99 <= 2 x the bare app's p99
- a worker's RSS <= 100 MB after the real server answered 100,000 requests
- revocation: a token deleted in PostgreSQL (as psql would) is refused by the warmed PostgreSQL node
  in a median <= 20 ms and at most 200 ms over `--revocation-trials` trials
- deployment/config (owner) in the coderd wire form: reported beside the reference form's (issue 11:
  within noise)

Writes the "HTTP" section of BENCHMARKS.md (other sections are kept). Exit status 1 when a target is
missed.

    .venv/bin/python scripts/bench.py [--duration 10] [--connections 16] [--no-postgres] [--cases TEXT,...]
        [--revocation-trials 100] [--no-rss] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import bench_ratelimit
from benchreport import machine, rss_kib, write_section
from delayproxy import delaying_proxy

from coderapi.testing import (
    ChildProcess,
    ServerProcess,
    child_env,
    free_port,
    pg_address,
    pg_database,
    seed_users,
    venv_command,
    wait_http,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
RSS_AFTER_REQUESTS = 100_000
RSS_LIMIT_MB = 100.0
P99_FACTOR = 2.0
# PostgreSQL "a network hop away": the delay the proxy adds in each direction.
PROXY_DELAY_MS = 1.0
PG_WITHIN_SQLITE = 0.03
REVOCATION_MEDIAN_MS = 20.0
REVOCATION_MAX_MS = 200.0

BARE_APP = '''
"""The floor: a bare Flask app answering recorded bodies."""
import json, os
from flask import Flask, Response

app = Flask("bare")
_bodies = json.load(open(os.environ["BENCH_BODIES"]))


def _view(status, content_type, body):
    data = body.encode("utf-8")
    return lambda: Response(data, status=status, content_type=content_type)


for _i, (_path, (_status, _ctype, _body)) in enumerate(sorted(_bodies.items())):
    app.add_url_rule(_path, f"v{_i}", _view(_status, _ctype, _body))


@app.get("/healthz")
def healthz():
    return Response(b"OK", content_type="text/plain; charset=utf-8")
'''


@dataclasses.dataclass
class Case:
    name: str
    path: str
    token: str  # "", "member" or "owner"
    database: str  # "sqlite", "postgres" or "postgres-far" (behind the delaying proxy)
    target: float
    limiter: bool = False  # rate limiting on (a limit nothing reaches), else off
    form: str = "reference"  # CODERAPI_WIRE_FORMAT


CASES = [
    Case("buildinfo (public)", "/api/v2/buildinfo", "", "sqlite", 0.85),
    Case("deployment/ssh (token, SQLite)", "/api/v2/deployment/ssh", "member", "sqlite", 0.70),
    Case("deployment/ssh (token, PostgreSQL)", "/api/v2/deployment/ssh", "member", "postgres", 0.72),
    Case(
        f"deployment/ssh (token, PostgreSQL {PROXY_DELAY_MS:g} ms away)",
        "/api/v2/deployment/ssh",
        "member",
        "postgres-far",
        0.70,
    ),
    Case("deployment/config (owner)", "/api/v2/deployment/config", "owner", "sqlite", 0.50),
    Case("deployment/config (owner, coderd form)", "/api/v2/deployment/config", "owner", "sqlite", 0.50, form="coderd"),
    Case("buildinfo (public, limiter on)", "/api/v2/buildinfo", "", "sqlite", 0.85, limiter=True),
    Case(
        "deployment/ssh (token, SQLite, limiter on)", "/api/v2/deployment/ssh", "member", "sqlite", 0.70, limiter=True
    ),
]
# How far below its limiter-off twin's (same path and database) a limiter-on ratio should stay.
LIMITER_MAX_DROP = 0.02
# A per-minute limit no benchmark reaches: every request is counted, none refused.
UNREACHED_LIMIT = "1000000000"


@dataclasses.dataclass
class Result:
    requests_per_sec: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


WRK_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
WRK_TOTAL = re.compile(r"^\s*(\d+) requests in", re.M)
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, headers: Mapping[str, str], duration: float, connections: int, threads: int) -> Result:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{round(duration)}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    lat = {m.group(1): float(m.group(2)) * UNIT_MS[m.group(3)] for m in WRK_LATENCY.finditer(out)}
    rps = WRK_RPS.search(out)
    total = WRK_TOTAL.search(out)
    if rps is None or total is None or "50" not in lat or "99" not in lat:
        raise SystemExit(f"cannot parse wrk output:\n{out}")
    sockets = WRK_SOCKET.search(out)
    errors = sum(int(x) for x in sockets.groups()) if sockets else 0
    non2xx = WRK_NON2XX.search(out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return Result(float(rps.group(1)), lat["50"], lat["99"], int(total.group(1)), errors)


def combine(results: list[Result], seconds: float) -> Result:
    """Rounds into one result: total requests over total time; the median round's p50 and p99."""
    mid = len(results) // 2
    return Result(
        sum(r.requests for r in results) / seconds,
        sorted(r.p50_ms for r in results)[mid],
        sorted(r.p99_ms for r in results)[mid],
        sum(r.requests for r in results),
        sum(r.errors for r in results),
    )


def interleaved(real_url: str, headers: Mapping[str, str], bare_url: str, args: Any) -> tuple[Result, Result]:
    """`args.rounds` alternating runs of each server, so load from anything else on the machine falls
    on both alike. Both get the same requests, token header included (the bare app ignores it)."""
    each = max(1, round(args.duration / args.rounds))  # wrk takes whole seconds
    real: list[Result] = []
    bare: list[Result] = []
    for _ in range(args.rounds):
        real.append(wrk(real_url, headers, each, args.connections, args.threads))
        bare.append(wrk(bare_url, headers, each, args.connections, args.threads))
    return combine(real, each * args.rounds), combine(bare, each * args.rounds)


def profile_worker(node: Node, path: str, headers: Mapping[str, str], args: Any) -> list[tuple[float, str]]:
    """The coderapi and Flask frames one worker of `node` spends its time in while wrk loads `path`:
    (share of the worker's samples that have the frame on the stack, frame), largest first."""
    import collections
    import threading

    spy = shutil.which("py-spy") or venv_command("py-spy")
    worker = str(node.proc.children()[0])
    seconds = max(3, round(args.duration / args.rounds))
    load = threading.Thread(target=wrk, args=(node.url + path, headers, seconds + 2, args.connections, args.threads))
    load.start()
    raw = pathlib.Path(tempfile.mkstemp(suffix=".txt")[1])
    try:
        time.sleep(1)
        subprocess.run(
            [
                spy,
                "record",
                "-p",
                worker,
                "-d",
                str(seconds),
                "-r",
                "250",
                "-f",
                "raw",
                "-o",
                str(raw),
                "--nonblocking",
            ],
            capture_output=True,
            check=False,
            timeout=seconds + 30,
        )
        load.join()
        counts: collections.Counter[str] = collections.Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            total += int(n)
            for frame in set(stack.split(";")):
                if "coderapi/" in frame or "flask/app.py" in frame or "sqlalchemy/engine" in frame:
                    counts[frame] += int(n)
    finally:
        raw.unlink(missing_ok=True)
    return [(100 * n / total, frame) for frame, n in counts.most_common(15)] if total else []


def worker_rss_mb(server: ChildProcess) -> list[float]:
    """Resident memory of each worker of the gunicorn master `server`, in MB."""
    return [rss_kib(pid) / 1024 for pid in server.children()]


def gunicorn_conf(path: pathlib.Path, port: int) -> None:
    """A gunicorn config with the options `coderapi server` would use, bound to `port`."""
    from coderapi import config, serving
    from coderapi.config.settings import Settings, process_environ

    env = process_environ()
    values = config.load(("--http-address", f"127.0.0.1:{port}"), {})
    opts = serving.gunicorn_options(values, Settings.from_environ(env))
    keep = {k: v for k, v in opts.items() if v is not None and not callable(v)}
    path.write_text("".join(f"{k} = {v!r}\n" for k, v in sorted(keep.items())))


def fetch(url: str, headers: Mapping[str, str]) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 (local URL)
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return resp.status, resp.headers["Content-Type"], resp.read().decode("utf-8")


@dataclasses.dataclass
class Node:
    url: str
    proc: ChildProcess
    tokens: dict[str, str]


def revocation_ms(node: Node, pg_url: str, trials: int) -> list[float]:
    """Per trial: a fresh token, used twice (the node keeps its answer), deleted with a direct DELETE
    in PostgreSQL; the milliseconds from the DELETE's commit until the node answers 401."""
    import psycopg

    from coderapi import apikey
    from coderapi.database import Store

    store = Store(pg_url, token_cache=False)
    took: list[float] = []
    try:
        user = store.get_user_by_username("bench-member")
        assert user is not None
        with psycopg.connect(pg_url, autocommit=True) as psql:
            for i in range(trials):
                token = apikey.issue(store, user.id, datetime.timedelta(hours=1), token_name=f"revoke-{i}")
                hdrs = {"Coder-Session-Token": token}
                for _ in range(3):
                    fetch(node.url + "/api/v2/deployment/ssh", hdrs)
                psql.execute("DELETE FROM api_keys WHERE id = %s", (apikey.split(token)[0],))
                start = time.perf_counter()
                while status_of(node.url + "/api/v2/deployment/ssh", hdrs) == 200:
                    if time.perf_counter() - start > 5:
                        raise SystemExit("a deleted token was still accepted after 5 s")
                took.append((time.perf_counter() - start) * 1000)
    finally:
        store.close()
    return took


def status_of(url: str, headers: Mapping[str, str]) -> int:
    import urllib.error

    try:
        return fetch(url, headers)[0]
    except urllib.error.HTTPError as err:
        return err.code


@contextmanager
def real_server(
    work: pathlib.Path, database: str, pg_url: str, limiter: bool = False, form: str = "reference"
) -> Iterator[Node]:
    name = database + ("-limiter" if limiter else "") + ("-coderd" if form != "reference" else "")
    data = work / f"data-{name}"
    data.mkdir(exist_ok=True)
    extra = {"CODERAPI_DATA_DIR": str(data), "CODERAPI_WIRE_FORMAT": form}
    if database.startswith("postgres"):
        extra["CODER_PG_CONNECTION_URL"] = pg_url
    env = child_env(extra, update_check=True)
    users = seed_users(env, [("bench-owner", ["owner"]), ("bench-member", [])])
    tokens = {role: users[f"bench-{role}"][1] for role in ("owner", "member")}
    flags = [
        *(("--api-rate-limit", UNREACHED_LIMIT) if limiter else ("--dangerous-disable-rate-limits",)),
        "--access-url",
        "https://coder.example.com",
    ]
    with ServerProcess(flags, env, work / f"server-{name}.log") as server:
        server.wait_ready(60)
        yield Node(server.url, server, tokens)


@contextmanager
def bare_server(work: pathlib.Path, bodies: dict[str, tuple[int, str, str]]) -> Iterator[Node]:
    port = free_port()
    (work / "bare_app.py").write_text(BARE_APP)
    (work / "bodies.json").write_text(json.dumps(bodies))
    conf = work / "bare_gunicorn.py"
    gunicorn_conf(conf, port)
    env = child_env({"BENCH_BODIES": str(work / "bodies.json")}, update_check=True)
    argv = [venv_command("gunicorn"), "-c", str(conf), "--chdir", str(work), "bare_app:app"]
    with ChildProcess(argv, env, work / "bare.log") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", 60, proc.alive)
        yield Node(url, proc, {})


def any_case(cases: Sequence[Case], database: str) -> bool:
    return any(c.database == database for c in cases)


def bare_path(case: Case) -> str:
    """Where the bare app answers this case's body: its path, plus the form when that is not the
    reference form (two forms of one path have two bodies)."""
    return case.path if case.form == "reference" else f"/{case.form}{case.path}"


def node_name(case: Case) -> str:
    return case.database + ("-limiter" if case.limiter else "") + ("-coderd" if case.form != "reference" else "")


def headers_for(case: Case, node: Node) -> dict[str, str]:
    return {"Coder-Session-Token": node.tokens[case.token]} if case.token else {}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per server and case (default 15)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating runs per server and case (default 5)")
    ap.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL cases")
    ap.add_argument(
        "--revocation-trials", type=int, default=100, help="revocation trials on the PostgreSQL node (0: none)"
    )
    ap.add_argument("--output", type=pathlib.Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--profile", action="store_true", help="also sample one real worker per case with py-spy")
    ap.add_argument("--cases", default="", help="only the cases whose name contains one of these, comma-separated")
    ap.add_argument("--no-rss", action="store_true", help="skip topping up to 100,000 requests for the RSS check")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")

    cases = [c for c in CASES if not (args.no_postgres and c.database.startswith("postgres"))]
    if args.cases:
        wanted = [w.strip() for w in args.cases.split(",") if w.strip()]
        cases = [c for c in cases if any(w in c.name for w in wanted)]
    work = pathlib.Path(tempfile.mkdtemp(prefix="coderapi-bench-"))
    proxy_port = free_port()
    revocation: list[float] = []
    pg_rss: list[float] = []
    rows: list[tuple[Case, Result, Result]] = []
    rss: list[float] = []
    profiles: dict[str, list[tuple[float, str]]] = {}
    served = 0
    try:
        with real_server(work, "sqlite", "") as sqlite_node, ExitStack() as more:
            pg_url = more.enter_context(pg_database("coderapi_bench")) if any_case(cases, "postgres") else ""
            pg_node = more.enter_context(real_server(work, "postgres", pg_url)) if pg_url else None
            far_node = None
            if any_case(cases, "postgres-far"):
                far_url = more.enter_context(pg_database("coderapi_bench"))
                host, port = pg_address()
                more.enter_context(delaying_proxy(proxy_port, port, PROXY_DELAY_MS, host))
                far_url_proxied = far_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy_port}")
                far_node = more.enter_context(real_server(work, "postgres-far", far_url_proxied))
            limited = any(c.limiter for c in cases)
            limited_node = more.enter_context(real_server(work, "sqlite", "", limiter=True)) if limited else None
            coderd = any(c.form == "coderd" for c in cases)
            coderd_node = more.enter_context(real_server(work, "sqlite", "", form="coderd")) if coderd else None
            nodes = {
                "sqlite": sqlite_node,
                "postgres": pg_node,
                "postgres-far": far_node,
                "sqlite-limiter": limited_node,
                "sqlite-coderd": coderd_node,
            }
            bodies: dict[str, tuple[int, str, str]] = {}
            for case in cases:
                node = nodes[node_name(case)]
                assert node is not None
                status, ctype, body = fetch(node.url + case.path, headers_for(case, node))
                if status != 200:
                    raise SystemExit(f"{case.path}: status {status}")
                # The bare app answers each (path, form) at a path of its own.
                bodies[bare_path(case)] = (status, ctype, body)
            with bare_server(work, bodies) as bare:
                for case in cases:
                    node = nodes[node_name(case)]
                    assert node is not None
                    hdrs = headers_for(case, node)
                    # Warm both (imports, pools, caches) before measuring.
                    wrk(node.url + case.path, hdrs, 2, args.connections, args.threads)
                    wrk(bare.url + bare_path(case), hdrs, 2, args.connections, args.threads)
                    real, floor = interleaved(node.url + case.path, hdrs, bare.url + bare_path(case), args)
                    if node is sqlite_node:
                        served += real.requests
                    rows.append((case, real, floor))
                    if args.profile:
                        profiles[case.name] = profile_worker(node, case.path, hdrs, args)
                    print(
                        f"{case.name}: real {real.requests_per_sec:.0f} req/s, bare {floor.requests_per_sec:.0f}"
                        f" req/s, ratio {real.requests_per_sec / floor.requests_per_sec:.2f}",
                        flush=True,
                    )
            if pg_node is not None and args.revocation_trials:
                revocation = revocation_ms(pg_node, pg_url, args.revocation_trials)
            # Top the SQLite server up to 100,000 requests, then read its workers' memory.
            sqlite_case = cases[1] if len(cases) > 1 else cases[0]
            while served < RSS_AFTER_REQUESTS and not args.no_rss:
                r = wrk(
                    sqlite_node.url + sqlite_case.path,
                    headers_for(sqlite_case, sqlite_node),
                    max(2.0, args.duration),
                    args.connections,
                    args.threads,
                )
                served += r.requests
            rss = [] if args.no_rss else worker_rss_mb(sqlite_node.proc)
            if pg_node is not None:
                pg_rss = worker_rss_mb(pg_node.proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ok, section = report(rows, rss, served, args, revocation, pg_rss)
    for name, top in profiles.items():
        print(f"\npy-spy, {name}: share of one worker's busy samples (inclusive)")
        for share, frame in top:
            print(f"  {share:5.1f}%  {frame}")
    if profiles:
        section += hot_spots(profiles)
    write_section(args.output, "## HTTP", section)
    print(section)
    # The in-process cost of one counter hit, old store against new ("Rate limit counter" section).
    bench_ratelimit.main(["--output", str(args.output)])
    return 0 if ok else 1


# Frames every request passes through; they say nothing about where the time goes.
WRAPPER_FRAMES = (
    "cli/server.py",
    "coderapi/serving.py",
    "Healthz.__call__",
    "RootMiddleware.__call__ (",
    "flask/app.py",
)


def hot_spots(profiles: dict[str, list[tuple[float, str]]]) -> str:
    """A markdown list of each case's largest coderapi / SQLAlchemy frames (py-spy, one real worker)."""
    lines = [
        "",
        "Where a real worker's time goes (`--profile`: py-spy, share of the worker's busy samples with the "
        "frame on the stack; the rest is gunicorn's HTTP parsing and socket work, and Flask):",
        "",
    ]
    for name, top in profiles.items():
        frames = [(share, frame) for share, frame in top if not any(w in frame for w in WRAPPER_FRAMES)][:5]
        listed = "; ".join(f"{frame.split(' (', 1)[0]} {share:.0f}%" for share, frame in frames) or "none above 1%"
        lines.append(f"- {name}: {listed}")
    return "\n".join(lines) + "\n"


def report(
    rows: list[tuple[Case, Result, Result]],
    rss: list[float],
    served: int,
    args: Any,
    revocation: Sequence[float] = (),
    pg_rss: Sequence[float] = (),
) -> tuple[bool, str]:
    from coderapi.config.settings import Settings
    from coderapi.serving import default_workers

    settings = Settings.from_environ()
    workers = settings.workers or default_workers()
    ok = True
    lines = [
        "## HTTP",
        "",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC by `make bench` "
        f"(`{pathlib.Path(sys.executable).name} scripts/bench.py --duration {args.duration:g} "
        f"--connections {args.connections} --threads {args.threads} --rounds {args.rounds}`). "
        f"Each case alternates {args.rounds} wrk runs on each server; req/s is over all runs, "
        "p50/p99 the median run's.",
        "",
        f"Machine: {machine()}. wrk runs on the same machine as the servers.",
        f"Both servers: gunicorn {workers} {'sync' if settings.threads <= 1 else 'gthread'} workers "
        f"({settings.threads} thread(s) each), the options `coderapi server` uses; the bare app is a Flask app "
        "with one view per path returning the body the real server answered. Both get identical requests (token "
        "header included). Rate limiting off, except in the limiter-on cases (a limit nothing reaches: every "
        "request counted in the node's shared store); request logging on; the reference wire form except in "
        "the coderd-form case.",
        "",
        "| case | real req/s | bare req/s | ratio (target) | real p50 ms | bare p50 ms | real p99 ms | bare p99 ms "
        "| p99 ratio (≤ 2) | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case, real, bare in rows:
        ratio = real.requests_per_sec / bare.requests_per_sec if bare.requests_per_sec else 0.0
        p99_ratio = real.p99_ms / bare.p99_ms if bare.p99_ms else float("inf")
        met = ratio >= case.target and p99_ratio <= P99_FACTOR and real.errors == 0
        ok &= met or case.limiter
        lines.append(
            f"| {case.name} | {real.requests_per_sec:.0f} | {bare.requests_per_sec:.0f} | "
            f"{ratio:.3f} (≥ {case.target:.2f}) {'✅' if ratio >= case.target else '❌'} | "
            f"{real.p50_ms:.2f} | {bare.p50_ms:.2f} | {real.p99_ms:.2f} | {bare.p99_ms:.2f} | "
            f"{p99_ratio:.3f} {'✅' if p99_ratio <= P99_FACTOR else '❌'} | {real.errors} |"
        )
    ratios = {
        (c.path, c.database, c.limiter, c.form): r.requests_per_sec / b.requests_per_sec
        for c, r, b in rows
        if b.requests_per_sec
    }
    drops = []
    for case, _real, _bare in rows:
        off = ratios.get((case.path, case.database, False, "reference"))
        on = ratios.get((case.path, case.database, True, "reference"))
        if case.limiter and off is not None and on is not None:
            met = off - on <= LIMITER_MAX_DROP
            drops.append(
                f"{case.name}: {off:.3f} off → {on:.3f} on ({on - off:+.3f}, at most −{LIMITER_MAX_DROP:.2f}) "
                f"{'✅' if met else '❌'}"
            )
    if drops:
        lines += [
            "",
            "What counting every request in the node's shared store costs (ratio with the limiter off → on; "
            "informational, the limiter-on rows are not targets):",
            "",
        ]
        lines += [f"- {d}" for d in drops]
    if rss:
        worst = max(rss)
        ok &= worst <= RSS_LIMIT_MB
        lines += [
            "",
            f"Worker memory after the SQLite server answered {served:,} requests: "
            f"{', '.join(f'{r:.1f}' for r in sorted(rss))} MB RSS; largest {worst:.1f} MB "
            f"(target ≤ {RSS_LIMIT_MB:.0f} MB) {'✅' if worst <= RSS_LIMIT_MB else '❌'}.",
        ]
    ssh_ratios = {
        c.database: r.requests_per_sec / b.requests_per_sec
        for c, r, b in rows
        if c.path == "/api/v2/deployment/ssh" and not c.limiter and b.requests_per_sec
    }
    if "postgres" in ssh_ratios and "sqlite" in ssh_ratios:
        gap = ssh_ratios["sqlite"] - ssh_ratios["postgres"]
        ok &= gap <= PG_WITHIN_SQLITE
        lines += [
            "",
            f"ssh ratio on SQLite minus ssh ratio on PostgreSQL: {gap:+.3f} (target ≤ {PG_WITHIN_SQLITE:.2f}) "
            f"{'✅' if gap <= PG_WITHIN_SQLITE else '❌'}. The PostgreSQL {PROXY_DELAY_MS:g} ms case goes through "
            f"scripts/delayproxy.py on 127.0.0.1 ({PROXY_DELAY_MS:g} ms each way).",
        ]
    if revocation:
        import statistics

        median, worst = statistics.median(revocation), max(revocation)
        met = median <= REVOCATION_MEDIAN_MS and worst <= REVOCATION_MAX_MS
        ok &= met
        lines += [
            "",
            f"Revocation on the PostgreSQL node (token used, then a direct `DELETE` in PostgreSQL, then "
            f"requests until 401; {len(revocation)} trials): median {median:.2f} ms, max {worst:.2f} ms "
            f"(target ≤ {REVOCATION_MEDIAN_MS:.0f} / ≤ {REVOCATION_MAX_MS:.0f} ms) {'✅' if met else '❌'}.",
        ]
    if pg_rss:
        lines += [
            "",
            f"PostgreSQL node's workers: {', '.join(f'{r:.1f}' for r in sorted(pg_rss))} MB RSS, each with one "
            "pinned connection per serving thread and one listener connection and thread (the token cache).",
        ]
    forms = [
        (case, ratios.get((case.path, case.database, False, "reference")), ratios.get(key))
        for case in (c for c, _r, _b in rows if c.form != "reference")
        for key in [(case.path, case.database, case.limiter, case.form)]
    ]
    for case, reference, other in forms:
        if reference is not None and other is not None:
            lines += [
                "",
                f"{case.name}: ratio {other:.3f} against {reference:.3f} in the reference form "
                f"({other - reference:+.3f}; the form is chosen once at startup and its bodies are prebuilt).",
            ]
    lines += ["", f"All targets met: {'yes' if ok else 'NO'}.", ""]
    return ok, "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
