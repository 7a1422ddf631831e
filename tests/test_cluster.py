"""`scripts/cluster.sh`: two nodes on one PostgreSQL and one Redis behind nginx answer as one deployment."""

from __future__ import annotations

import json
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from coderapi import testing
from coderapi.testing import ChildProcess, child_env, free_port, venv_command
from tests import services

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLUSTER_LIMIT = 6


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def free_port_pair() -> int:
    """A port p with p and p + 1 both free."""
    for _ in range(50):
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    pytest.fail("no two adjacent free ports")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Cluster:
    def __init__(self, proc: ChildProcess, url: str, node_ports: list[int], env: dict[str, str]) -> None:
        self.proc = proc
        self.url = url
        self.node_urls = [f"http://127.0.0.1:{p}" for p in node_ports]
        self.node_ports = node_ports
        self.env = env

    def cli(self, *args: str) -> str:
        coderapi = venv_command("coderapi")
        out = subprocess.run([coderapi, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[Cluster]:
    services.require_postgres()
    services.require_redis()
    db = testing.unique_name("coderapi_cluster")
    pg_url = testing.create_pg_database(db)
    port, node_port = free_port(), free_port_pair()
    env = child_env(
        {
            "CODER_PG_CONNECTION_URL": pg_url,
            "CODERAPI_RATE_LIMIT_REDIS_URL": services.REDIS_URL,
            "CODER_API_RATE_LIMIT": str(CLUSTER_LIMIT),
            "CLUSTER_PORT": str(port),
            "CLUSTER_NODE_PORT": str(node_port),
            "CLUSTER_DIR": str(tmp_path / "cluster"),
            "CODERAPI_WORKERS": "2",
            "CODERAPI": venv_command("coderapi"),
            "PYTHON": sys.executable,
        }
    )
    proc = ChildProcess(["bash", str(ROOT / "scripts" / "cluster.sh"), "2"], env, tmp_path / "cluster.out")
    try:
        deadline = time.monotonic() + 90
        while "cluster ready" not in proc.output():
            if not proc.alive() or time.monotonic() > deadline:
                pytest.fail("cluster did not start:\n" + proc.output())
            time.sleep(0.2)
        yield Cluster(proc, f"http://127.0.0.1:{port}", [node_port, node_port + 1], env)
    finally:
        proc.stop(timeout=30)
        testing.drop_pg_database(db)


def test_two_nodes_answer_as_one_deployment(cluster: Cluster) -> None:
    ids = {json.loads(get(u + "/api/v2/buildinfo")[1])["deployment_id"] for u in cluster.node_urls}
    assert len(ids) == 1
    assert json.loads(get(cluster.url + "/api/v2/buildinfo")[1])["deployment_id"] in ids

    # A token made with the CLI (one database) works on every node and through nginx.
    cluster.cli("users", "create", "--username", "alice", "--email", "alice@example.com", "--roles", "owner")
    token = cluster.cli("tokens", "create", "--user", "alice").splitlines()[-1]
    auth = {"Coder-Session-Token": token}
    for url in cluster.node_urls:
        assert get(url + "/api/v2/deployment/ssh", auth)[0] == 200
    assert [get(cluster.url + "/api/v2/deployment/ssh", auth)[0] for _ in range(4)] == [200] * 4

    # One Redis: one budget per user and path across both nodes.
    path = "/api/v2/experiments"
    results = [get(cluster.node_urls[i % 2] + path, auth)[0] for i in range(CLUSTER_LIMIT)]
    assert results == [200] * CLUSTER_LIMIT
    assert get(cluster.node_urls[0] + path, auth)[0] == 429
    assert get(cluster.node_urls[1] + path, auth)[0] == 429
    assert get(cluster.url + path, auth)[0] == 429


def test_stopping_the_script_stops_every_node(cluster: Cluster) -> None:
    assert all(port_open(p) for p in cluster.node_ports)
    cluster.proc.signal(signal.SIGTERM)
    assert cluster.proc.proc.wait(45) == 0
    assert not any(port_open(p) for p in cluster.node_ports)
    assert not port_open(int(cluster.url.rsplit(":", 1)[1]))
