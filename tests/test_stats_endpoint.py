"""GET /api/v2/deployment/stats: access, the 400 before the first value, the body from the cache."""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from flask import Flask

from coderapi.database import Store
from coderapi.database.tables import workspace_agent_stats
from coderapi.runtime import EXTENSION_KEY, Runtime
from coderapi.services.statscache import DeploymentStatsCache
from tests.conftest import MakeApp
from tests.contract import definition_schema

PATH = "/api/v2/deployment/stats"
Auth = Callable[[str], dict[str, str]]
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")
FORBIDDEN = {
    "message": "Forbidden.",
    "detail": "You don't have permission to view this content. If you believe this is a mistake, please contact "
    "your administrator or try signing in with different credentials.",
}


def cache_of(app: Flask) -> DeploymentStatsCache:
    rt: Runtime = app.extensions[EXTENSION_KEY]
    cache = rt.stats
    assert isinstance(cache, DeploymentStatsCache)
    return cache


def wait_first_value(app: Flask) -> None:
    cache = cache_of(app)
    done = threading.Event()
    for _ in range(200):
        if cache.body() is not None:
            return
        done.wait(0.05)
    pytest.fail("the first computation never finished")


def swagger_schema() -> dict[str, object]:
    return definition_schema("codersdk.DeploymentStats")


@pytest.mark.wire_format("reference")
@pytest.mark.parametrize("who", ["owner", "auditor"])
def test_owner_and_auditor_read_the_cached_stats(
    make_app: MakeApp, store: Store, auth: Auth, owner_token: str, auditor_token: str, who: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    row = {
        "id": uuid.uuid4(),
        "created_at": now - dt.timedelta(minutes=1),
        "user_id": uuid.uuid4(),
        "agent_id": uuid.uuid4(),
        "workspace_id": uuid.uuid4(),
        "template_id": uuid.uuid4(),
        "session_count_vscode": 1,
        "connection_median_latency_ms": 12.5,
    }
    store.insert_rows(workspace_agent_stats, [row])
    app = make_app()
    wait_first_value(app)
    resp = app.test_client().get(PATH, headers=auth(owner_token if who == "owner" else auditor_token))
    assert resp.status_code == 200
    assert resp.content_type == "application/json; charset=utf-8"
    body = resp.get_json()
    assert list(body) == ["aggregated_from", "collected_at", "next_update_at", "workspaces", "session_count"]
    assert list(body["workspaces"]) == [
        "pending",
        "building",
        "running",
        "failed",
        "stopped",
        "connection_latency_ms",
        "rx_bytes",
        "tx_bytes",
    ]
    assert list(body["session_count"]) == ["vscode", "ssh", "jetbrains", "reconnecting_pty"]
    assert body["session_count"]["vscode"] == 1
    assert body["workspaces"]["connection_latency_ms"] == {"p50": 12.5, "p95": 12.5}
    for key in ("aggregated_from", "collected_at", "next_update_at"):
        assert TIME.match(body[key]), body[key]
    collected = dt.datetime.fromisoformat(body["collected_at"])
    assert dt.datetime.fromisoformat(body["next_update_at"]) - collected == dt.timedelta(seconds=30)
    assert collected - dt.datetime.fromisoformat(body["aggregated_from"]) >= dt.timedelta(minutes=15)
    jsonschema.validate(body, swagger_schema())
    # Nothing is computed per request: the same bytes until the next refresh.
    again = app.test_client().get(PATH, headers=auth(owner_token))
    assert again.get_data() == resp.get_data() == cache_of(app).body()


def test_member_is_forbidden_before_the_cache_check(make_app: MakeApp, auth: Auth, member_token: str) -> None:
    app = make_app()
    resp = app.test_client().get(PATH, headers=auth(member_token))
    assert resp.status_code == 403
    assert resp.get_json() == FORBIDDEN


def test_no_token_is_401(make_app: MakeApp) -> None:
    resp = make_app().test_client().get(PATH)
    assert resp.status_code == 401


def test_still_processing_until_the_first_value(make_app: MakeApp, store: Store, auth: Auth, owner_token: str) -> None:
    app = make_app()
    rt: Runtime = app.extensions[EXTENSION_KEY]
    rt.stats.stop()
    pending = DeploymentStatsCache(store, dt.timedelta(seconds=30), usage=False)
    rt.stats = pending
    resp = app.test_client().get(PATH, headers=auth(owner_token))
    assert resp.status_code == 400
    assert resp.get_data() == b'{"message":"Deployment stats are still processing!"}\n'
    pending.tick()
    assert app.test_client().get(PATH, headers=auth(owner_token)).status_code == 200


def test_options_reach_the_cache(make_app: MakeApp) -> None:
    app = make_app(env={"CODER_AGENT_STATS_REFRESH_INTERVAL": "2m", "CODER_EXPERIMENTS": "workspace-usage"})
    cache = cache_of(app)
    assert cache.interval == dt.timedelta(minutes=2)
    assert cache.usage is True
    assert cache.running
    plain = cache_of(make_app(env={"CODER_AGENT_STATS_REFRESH_INTERVAL": "0s"}))
    assert plain.interval == dt.timedelta(minutes=5)
    assert plain.usage is False


def test_shutdown_stops_the_services(make_app: MakeApp) -> None:
    from coderapi.app import shutdown

    app = make_app()
    cache = cache_of(app)
    assert cache.running
    shutdown(app)
    assert not cache.running


class ParentOnlyStore:
    """The store for the test's own process; in a forked child every use waits forever, so the child
    never touches connections it shares with the parent."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pid = os.getpid()

    def __getattr__(self, name: str) -> Any:
        if os.getpid() != self.pid:
            threading.Event().wait()
        return getattr(self.store, name)


# Python 3.12 warns about forking a process with threads; gunicorn's workers are forked so, too.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_restarts_after_fork(make_app: MakeApp, auth: Auth, owner_token: str) -> None:
    app = make_app()
    cache = cache_of(app)
    wait_first_value(app)
    cache.store = ParentOnlyStore(cache.store)  # type: ignore[assignment]
    pid = os.fork()
    if pid == 0:  # the child: a forked worker, whose copy of the parent's thread never runs
        os._exit(0 if cache.running and cache.thread_name in {t.name for t in threading.enumerate()} else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    resp = app.test_client().get(PATH, headers=auth(owner_token))
    assert resp.status_code == 200
    assert cache.running
