"""Real nginx (Debian nginx-light) in front of real coderapi nodes, with the repository's config.

Behind trusted-proxy settings the client IP nginx forwards decides the rate-limit budget; without them
X-Forwarded-For is ignored and every client behind the proxy shares the proxy's budget.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence

import pytest

from coderapi.testing import ChildProcess, child_env, free_port, wait_http
from tests import services
from tests.conftest import StartServer

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
NGINX_DIR = ROOT / "deploy" / "nginx"
TRUST_PROXY = ("--proxy-trusted-origins", "127.0.0.1/32", "--proxy-trusted-headers", "X-Forwarded-For")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if pathlib.Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.fail("nginx is not installed (Debian package nginx-light)")
    return found


def render(site: str, listen_port: int, upstream_ports: Sequence[int]) -> str:
    """The repository's site file with local ports between its BEGIN/END markers."""
    out: list[str] = []
    skipping = False
    for line in site.splitlines():
        if "# BEGIN nodes" in line:
            out.append(line)
            out += [f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;" for p in upstream_ports]
            skipping = True
            continue
        if "# BEGIN listen" in line:
            out.append(line)
            out.append(f"    listen 127.0.0.1:{listen_port};")
            skipping = True
            continue
        if "# END " in line:
            skipping = False
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


StartNginx = Callable[[Sequence[int]], str]


@pytest.fixture
def start_nginx(tmp_path: pathlib.Path) -> Iterator[StartNginx]:
    procs: list[ChildProcess] = []

    def start(upstream_ports: Sequence[int]) -> str:
        prefix = tmp_path / f"nginx{len(procs)}"
        (prefix / "tmp").mkdir(parents=True)
        port = free_port()
        shutil.copy(NGINX_DIR / "nginx.conf", prefix / "nginx.conf")
        (prefix / "coderapi.conf").write_text(render((NGINX_DIR / "coderapi.conf").read_text(), port, upstream_ports))
        argv = [nginx_binary(), "-p", str(prefix), "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;"]
        proc = ChildProcess(argv, child_env(), prefix / "nginx.out")
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", alive=proc.alive)
        return url

    yield start
    for proc in procs:
        proc.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def statuses(url: str, n: int, headers: dict[str, str]) -> list[int]:
    return [get(url, headers)[0] for _ in range(n)]


LIMIT = 5


def limited_node(start_server: StartServer, tmp_path: pathlib.Path, *flags: str, name: str) -> tuple[int, pathlib.Path]:
    services.require_redis()
    log = tmp_path / f"{name}.json"
    node = start_server(
        "--api-rate-limit",
        str(LIMIT),
        "--log-json",
        str(log),
        *flags,
        env={"CODERAPI_RATE_LIMIT_REDIS_URL": services.REDIS_URL},
        name=name,
    )
    return node.port, log


def test_trusted_proxy_gives_each_forwarded_client_its_own_budget(
    start_server: StartServer, start_nginx: StartNginx, tmp_path: pathlib.Path
) -> None:
    port, log = limited_node(start_server, tmp_path, *TRUST_PROXY, name="trusting")
    proxy = start_nginx([port])
    alice = {"X-Forwarded-For": "203.0.113.10"}
    bob = {"X-Forwarded-For": "203.0.113.20"}
    url = proxy + "/api/v2/buildinfo"
    assert statuses(url, LIMIT, alice) == [200] * LIMIT
    status, headers, body = get(url, alice)
    assert status == 429
    assert json.loads(body)["message"] == f"You've been rate limited for sending more than {LIMIT} requests in 1m0s."
    assert headers["x-ratelimit-limit"] == str(LIMIT)
    # Bob's budget is untouched.
    status, headers, _ = get(url, bob)
    assert status == 200
    assert headers["x-ratelimit-remaining"] == str(LIMIT - 1)

    ips = [
        json.loads(line)["fields"]["client_ip"]
        for line in log.read_text().splitlines()
        if '"logger_names":["coderapi","http"]' in line
    ]
    assert ips.count("203.0.113.10") == LIMIT + 1
    assert ips.count("203.0.113.20") == 1
    assert "127.0.0.1" not in ips


def test_without_trust_forwarded_headers_are_ignored(
    start_server: StartServer, start_nginx: StartNginx, tmp_path: pathlib.Path
) -> None:
    port, log = limited_node(start_server, tmp_path, name="plain")
    proxy = start_nginx([port])
    url = proxy + "/api/v2/buildinfo"
    assert statuses(url, LIMIT, {"X-Forwarded-For": "203.0.113.10"}) == [200] * LIMIT
    # A different forwarded client, through the proxy or straight to the node: same budget (the peer's).
    assert get(url, {"X-Forwarded-For": "203.0.113.20"})[0] == 429
    assert get(f"http://127.0.0.1:{port}/api/v2/buildinfo", {"X-Forwarded-For": "198.51.100.7"})[0] == 429
    ips = {
        json.loads(line)["fields"]["client_ip"]
        for line in log.read_text().splitlines()
        if '"logger_names":["coderapi","http"]' in line
    }
    assert ips == {"127.0.0.1"}


def test_a_client_cannot_choose_its_budget_through_the_proxy(
    start_server: StartServer, start_nginx: StartNginx, tmp_path: pathlib.Path
) -> None:
    # A client behind the outer balancer sends its own X-Forwarded-For; the balancer appends the address
    # it saw. nginx's real_ip takes that last (trusted) address and the site config REPLACES the header
    # with it, so the spoofed first element never reaches the node, which would otherwise believe it.
    port, log = limited_node(start_server, tmp_path, *TRUST_PROXY, name="spoof")
    proxy = start_nginx([port])
    get(proxy + "/api/v2/buildinfo", {"X-Forwarded-For": "203.0.113.10, 10.9.9.9"})
    (entry,) = [json.loads(line) for line in log.read_text().splitlines() if '"coderapi","http"' in line]
    assert entry["fields"]["client_ip"] == "10.9.9.9"


SLOW_CLIENTS = 200
SLOW_SECONDS = 30.0
# Enough bytes that a client sending one a second is still sending its headers when the test ends.
SLOW_REQUEST = b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 64 + b"\r\n\r\n"


class SlowClients:
    """`count` connections to 127.0.0.1:`port`, each sending SLOW_REQUEST one byte a second from one
    thread, until `stop()` or `seconds` have passed (it stops by itself)."""

    def __init__(self, port: int, count: int, seconds: float) -> None:
        import socket
        import threading

        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        self.deadline = time.monotonic() + seconds
        self.stopped = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        offset = 0
        while not self.stopped.is_set() and time.monotonic() < self.deadline and offset < len(SLOW_REQUEST):
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.send(SLOW_REQUEST[offset : offset + 1])
            offset += 1
            self.sent = offset
            self.stopped.wait(1.0)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        for sock in self.socks:
            sock.close()


def timed_get(url: str) -> tuple[int, float]:
    began = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()
            status = int(resp.status)
    except urllib.error.HTTPError as err:
        err.close()
        status = int(err.code)
    except (urllib.error.URLError, OSError):
        status = 0  # timed out or refused: counted as the slowest answer
    return status, time.monotonic() - began


def test_slow_header_clients_do_not_hold_the_workers_behind_nginx(
    start_server: StartServer, start_nginx: StartNginx
) -> None:
    node = start_server("--dangerous-disable-rate-limits", workers=2)
    proxy = start_nginx([node.port])
    url = proxy + "/api/v2/buildinfo"

    # Why the proxy is required: two slow clients straight to the node hold both of its sync workers.
    direct = SlowClients(node.port, 2, 10.0)
    try:
        time.sleep(0.5)
        assert timed_get(node.url + "/api/v2/buildinfo")[0] == 0
    finally:
        direct.stop()
    wait_http(node.url + "/healthz")

    # Through nginx, 200 of them for 30 s change nothing for everyone else.
    port = int(proxy.rsplit(":", 1)[1])
    slow = SlowClients(port, SLOW_CLIENTS, SLOW_SECONDS)
    latencies: list[float] = []
    try:
        while time.monotonic() < slow.deadline:
            status, seconds = timed_get(url)
            assert status == 200, (status, len(latencies))
            latencies.append(seconds)
            time.sleep(0.05)
        assert slow.sent >= SLOW_SECONDS - 2  # the slow clients really were sending all along
    finally:
        slow.stop()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert len(latencies) > 100 and p99 < 1.0, (len(latencies), p99, latencies[-5:])
