#!/usr/bin/env python3
"""In-process cost of one request: the WSGI app called in a loop, no HTTP server, no sockets.

Shows what the app itself adds per request, next to a bare Flask app answering the same bytes (the
floor `make bench` compares against), and with `--profile` where that time goes (cProfile). It is the
fast loop for hot-path work; `make bench` is the judge.

    .venv/bin/python scripts/hotpath.py [--requests 20000] [--postgres URL] [--profile CASE]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pathlib
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response

from coderapi import config
from coderapi.app import create_app, shutdown
from coderapi.config.settings import Settings
from coderapi.database import Store
from coderapi.testing import add_users

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
CASE_USERS = (("member", ()), ("owner", ("owner",)))
CASES = {
    "buildinfo": ("/api/v2/buildinfo", None),
    "ssh": ("/api/v2/deployment/ssh", "member"),
    "config": ("/api/v2/deployment/config", "owner"),
}


def environ(path: str, token: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "RAW_URI": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "3000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:3000",
        "HTTP_USER_AGENT": "wrk",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if token:
        env["HTTP_CODER_SESSION_TOKEN"] = token
    return env


def call(app: WSGIApp, env: dict[str, Any]) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(s)

    chunks = app(dict(env), start_response)
    body = b"".join(chunks)
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    return status[0], body


def per_request_us(app: WSGIApp, env: dict[str, Any], n: int) -> float:
    for _ in range(200):
        call(app, env)
    start = time.process_time()
    for _ in range(n):
        call(app, env)
    return (time.process_time() - start) / n * 1e6


def bare_app(answers: dict[str, tuple[str, bytes]]) -> Flask:
    bare = Flask("bare")
    for i, (path, (status, body)) in enumerate(sorted(answers.items())):
        code = int(status.split()[0])
        bare.add_url_rule(path, f"v{i}", lambda b=body, c=code: Response(b, status=c, content_type="application/json"))
    return bare


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--postgres", default="", help="a PostgreSQL URL to use instead of a temporary SQLite file")
    ap.add_argument("--profile", choices=sorted(CASES), help="cProfile this case and print the top functions")
    ap.add_argument("--sort", default="tottime", help="cProfile sort key (default tottime)")
    ap.add_argument("--top", type=int, default=35, help="functions to print (default 35)")
    ap.add_argument("--log", default="", help='human log file (default: a temporary file; "off" for none)')
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("CODER_PG_CONNECTION_URL", None)
        log = "" if args.log == "off" else args.log or os.path.join(tmp, "server.log")
        settings = Settings(data_dir=pathlib.Path(tmp))
        values = config.load(("--dangerous-disable-rate-limits", "--log-human", log), {})
        store = Store(args.postgres) if args.postgres else Store("sqlite:///" + os.path.join(tmp, "db.sqlite"))
        store.migrate()
        users = add_users(store, [(f"hot-{role}-{os.getpid()}", roles) for role, roles in CASE_USERS])
        tokens = {role: users[f"hot-{role}-{os.getpid()}"][1] for role, _roles in CASE_USERS}
        app = create_app(values, store, settings)
        try:
            answers = {}
            for _name, (path, who) in CASES.items():
                answers[path] = call(app, environ(path, tokens.get(who or "")))
                assert answers[path][0].startswith("200"), answers[path]
            bare = bare_app(answers)
            if args.profile:
                path, who = CASES[args.profile]
                env = environ(path, tokens.get(who or ""))
                prof = cProfile.Profile()
                prof.enable()
                for _ in range(args.requests):
                    call(app, env)
                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.top)
                print(out.getvalue())
                return 0
            print(f"{'case':<10} {'coderapi µs':>12} {'bare µs':>9} {'added µs':>9}")
            for name, (path, who) in CASES.items():
                env = environ(path, tokens.get(who or ""))
                real = per_request_us(app, env, args.requests)
                floor = per_request_us(bare, env, args.requests)
                print(f"{name:<10} {real:>12.1f} {floor:>9.1f} {real - floor:>9.1f}")
        finally:
            shutdown(app)
            store.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
