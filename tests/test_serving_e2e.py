"""`coderapi server` and `gunicorn wsgi:app` as real processes: health, metrics across workers, JSON
logs, TLS, limits, SIGHUP reload and graceful SIGTERM."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import pathlib
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

from coderapi.testing import ChildProcess, child_env, free_port, wait_http
from tests.conftest import StartServer
from tests.test_ratelimit import fresh_window
from tests.test_serving import write_cert

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def workers_of(master_pid: int) -> set[int]:
    path = pathlib.Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def wait_for(cond: object, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        body: bytes = resp.read()
        return body.decode()


def counter(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return 0.0


def test_server_health_metrics_across_workers_and_json_logs(start_server: StartServer, tmp_path: pathlib.Path) -> None:
    prom = free_port()
    log = tmp_path / "server.json"
    # The operator's multiprocess directory is used (and emptied of stale samples first).
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_99999.db").write_bytes(b"stale")
    server = start_server(
        "--prometheus-enable",
        "--prometheus-address",
        f"127.0.0.1:{prom}",
        "--log-json",
        str(log),
        "--swagger-enable",
        workers=2,
        env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc)},
    )
    wait_for(lambda: len(workers_of(server.proc.pid)) == 2, what="two workers")
    assert not (multiproc / "counter_99999.db").exists()

    status, headers, body = get(server.url + "/healthz")
    assert (status, body, headers["Content-Type"]) == (200, b"OK", "text/plain; charset=utf-8")

    status, headers, body = get(server.url + "/swagger/doc.json")
    assert status == 200
    assert len(json.loads(body)["paths"]) == 10

    # Each request on a new connection: the sync workers share them.
    # Concurrent clients, each request on a new connection: both sync workers serve some.
    n = 120
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _i: get(server.url + "/api/v2/buildinfo"), range(n)))
    assert [a[0] for a in answers] == [200] * n
    request_ids = {a[1]["X-Coder-Request-Id"] for a in answers}
    assert len(request_ids) == n
    assert get(server.url + "/api/v2/deployment/ssh")[0] == 401

    # A token made with the CLI on the server's database, sent in the header and in the query.
    cli_env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "node")})
    coderapi = str(pathlib.Path(sys.executable).parent / "coderapi")
    for args in (
        ["users", "create", "--username", "alice", "--email", "a@example.com"],
        ["tokens", "create", "--user", "alice"],
    ):
        out = subprocess.run([coderapi, *args], env=cli_env, capture_output=True, text=True, timeout=60, check=True)
    token = out.stdout.strip()
    assert get(server.url + "/api/v2/deployment/ssh", {"Coder-Session-Token": token})[0] == 200
    assert get(server.url + f"/api/v2/deployment/ssh?coder_session_token={token}")[0] == 200

    wait_http(f"http://127.0.0.1:{prom}/metrics")
    text = scrape(prom)
    # Each worker wrote its own samples; the exporter summed them.
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in multiproc.glob("counter_*.db")}
    assert pids == workers_of(server.proc.pid)
    assert counter(text, "coderd_api_requests_processed_total", code="200", method="GET", path="/api/v2/buildinfo") == n
    assert (
        counter(text, "coderd_api_requests_processed_total", code="401", method="GET", path="/api/v2/deployment/ssh")
        == 1
    )

    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    lines = [e for e in entries if e.get("logger_names") == ["coderapi", "http"]]
    logged = [e["fields"] for e in lines if e["fields"]["path"] == "/api/v2/buildinfo"]
    assert {f["request_id"] for f in logged} == request_ids
    assert all(f["client_ip"] == "127.0.0.1" and f["status"] == 200 for f in logged)
    authed = [
        e["fields"] for e in lines if e["fields"]["status"] == 200 and e["fields"]["path"] == "/api/v2/deployment/ssh"
    ]
    assert len(authed) == 2
    assert all(f["user_id"] for f in authed)
    assert authed[1]["query"] == "coder_session_token=REDACTED"
    secret = token.split("-", 1)[1]
    assert secret not in log.read_text()
    assert secret not in server.output()


def test_sighup_replaces_workers_and_sigterm_stops_gracefully(start_server: StartServer) -> None:
    server = start_server(workers=2)
    wait_for(lambda: len(workers_of(server.proc.pid)) == 2, what="two workers")
    before = workers_of(server.proc.pid)
    server.signal(signal.SIGHUP)
    wait_for(
        lambda: len(workers_of(server.proc.pid) - before) == 2 and not (workers_of(server.proc.pid) & before),
        what="new workers after SIGHUP",
    )
    assert server.alive()
    assert get(server.url + "/healthz")[0] == 200
    assert get(server.url + "/api/v2/buildinfo")[0] == 200

    server.signal(signal.SIGTERM)
    assert server.proc.wait(40) == 0
    assert "Shutting down" in server.output() or "Handling signal: term" in server.output()


def test_request_line_and_header_limits(start_server: StartServer) -> None:
    server = start_server(workers=1)
    status, _h, _b = get(server.url + "/api/v2/buildinfo?" + "a" * 9000)
    assert status == 414
    status, _h, _b = get(server.url + "/api/v2/buildinfo", headers={"X-Big": "b" * 9000})
    assert status == 431
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("GET", "/api/v2/buildinfo")
        for i in range(120):
            conn.putheader(f"X-H{i}", "v")
        conn.endheaders()
        assert conn.getresponse().status == 431
    finally:
        conn.close()
    assert get(server.url + "/api/v2/buildinfo")[0] == 200


def test_tls_listener(start_server: StartServer, tmp_path: pathlib.Path) -> None:
    cert, key = write_cert(tmp_path)
    port = free_port()
    server = start_server(
        "--tls-enable",
        "--tls-address",
        f"127.0.0.1:{port}",
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        workers=1,
        wait=False,
    )
    ctx = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 40
    while True:
        assert server.alive(), server.output()
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/api/v2/buildinfo", context=ctx, timeout=5) as resp:
                assert resp.status == 200
                assert json.loads(resp.read())["version"]
                break
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                pytest.fail("TLS listener never answered:\n" + server.output())
            time.sleep(0.2)
    # Plain HTTP is not served with TLS on.
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(server.url + "/healthz", timeout=2)


def test_gunicorn_conf_serves_wsgi_app_with_the_same_settings(tmp_path: pathlib.Path) -> None:
    port, prom = free_port(), free_port()
    env = child_env(
        {
            "CODER_HTTP_ADDRESS": f"127.0.0.1:{port}",
            "CODER_PROMETHEUS_ENABLE": "true",
            "CODER_PROMETHEUS_ADDRESS": f"127.0.0.1:{prom}",
            "CODERAPI_DATA_DIR": str(tmp_path / "data"),
            "CODERAPI_WORKERS": "2",
            "CODER_API_RATE_LIMIT": "20",
        }
    )
    gunicorn = str(pathlib.Path(sys.executable).parent / "gunicorn")
    proc = ChildProcess([gunicorn, "-c", "gunicorn.conf.py", "wsgi:app"], env, tmp_path / "gunicorn.out", cwd=ROOT)
    url = f"http://127.0.0.1:{port}/api/v2/buildinfo"
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", alive=proc.alive)
        wait_for(lambda: len(workers_of(proc.proc.pid)) == 2, what="two workers")
        status, headers, body = get(url)
        assert status == 200 and json.loads(body)["deployment_id"]
        assert "X-Coder-Request-Id" in headers
        assert "coderapi.workers.SyncWorker" in proc.output()
        # Both workers count against the node's one budget (the counter directory reached them through
        # the environment gunicorn.conf.py prepared).
        fresh_window()
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            statuses = list(pool.map(lambda _: get(f"http://127.0.0.1:{port}/api/v2/experiments")[0], range(30)))
        assert (statuses.count(401), statuses.count(429)) == (20, 10), statuses

        # SIGHUP runs gunicorn.conf.py again: the exporter and its samples carry on.
        before = workers_of(proc.proc.pid)
        proc.signal(signal.SIGHUP)
        wait_for(lambda: len(workers_of(proc.proc.pid) - before) == 2, what="new workers after SIGHUP")
        wait_for(lambda: not (workers_of(proc.proc.pid) & before), what="old workers gone")
        for _ in range(5):
            assert get(url)[0] == 200
        wait_http(f"http://127.0.0.1:{prom}/metrics")
        text = scrape(prom)
        assert (
            counter(text, "coderd_api_requests_processed_total", code="200", method="GET", path="/api/v2/buildinfo")
            == 6
        )
    finally:
        assert proc.stop() == 0


def test_sighup_applies_a_changed_config_file(start_server: StartServer, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "coder.yaml"
    config.write_text("networking:\n  accessURL: https://before.example.com\n")
    server = start_server("--config", str(config), workers=1)
    assert json.loads(get(server.url + "/api/v2/buildinfo")[2])["dashboard_url"] == "https://before.example.com"

    config.write_text("networking:\n  accessURL: https://after.example.com\n")
    server.signal(signal.SIGHUP)
    wait_for(
        lambda: json.loads(get(server.url + "/api/v2/buildinfo")[2])["dashboard_url"] == "https://after.example.com",
        what="the new access URL after SIGHUP",
    )

    # A file that no longer loads keeps the running configuration.
    config.write_text("networking:\n  accessURL: [not, a, url]\n  noSuchKey: 1\n")
    server.signal(signal.SIGHUP)
    wait_for(lambda: "reload: keeping the running configuration" in server.output(), what="the refused reload")
    wait_for(lambda: len(workers_of(server.proc.pid)) == 1, what="the replacement worker")
    assert server.alive()
    wait_http(server.url + "/healthz")
    assert json.loads(get(server.url + "/api/v2/buildinfo")[2])["dashboard_url"] == "https://after.example.com"


def test_one_warning_when_listening_beyond_loopback_without_a_proxy(
    start_server: StartServer, tmp_path: pathlib.Path
) -> None:
    # Bound on every interface, but only ever spoken to on 127.0.0.1.
    port = free_port()
    exe = str(pathlib.Path(sys.executable).parent / "coderapi")
    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "exposed"), "CODERAPI_WORKERS": "2"})
    exposed = ChildProcess([exe, "server", "--http-address", f"0.0.0.0:{port}"], env, tmp_path / "exposed.out")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", alive=exposed.alive)
        wait_for(lambda: exposed.output().count("Worker ready") == 2, what="two workers")
        lines = [line for line in exposed.output().splitlines() if "buffering reverse proxy" in line]
        assert len(lines) == 1, exposed.output()
        assert "[WARNING]" in lines[0] and f"0.0.0.0:{port}" in lines[0] and "deploy/nginx" in lines[0]
    finally:
        assert exposed.stop() == 0
    local = start_server()
    wait_for(lambda: local.output().count("Worker ready") == 2, what="two workers")
    assert "buffering reverse proxy" not in local.output()
