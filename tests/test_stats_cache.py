"""The deployment-stats cache: refresh, sharing between workers, leases, retries, the wire format."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from typing import Any

import pytest

from coderapi.database import Store
from coderapi.database.stats import AgentStatsSummary, WorkspaceStatusCounts
from coderapi.database.tables import workspace_agent_stats
from coderapi.goformat import go_float, rfc3339
from coderapi.services import statscache
from coderapi.services.statscache import DeploymentStatsCache, DeploymentStatsSnapshot, refresh_interval

T0 = dt.datetime(2026, 11, 29, 12, 0, 0, 250000, tzinfo=dt.UTC)
INTERVAL = dt.timedelta(seconds=30)


class Clock:
    """A clock that advances by `step` each time it is read (so collected_at follows the queries)."""

    def __init__(self, at: dt.datetime, step: dt.timedelta = dt.timedelta(0)) -> None:
        self.at = at
        self.step = step

    def __call__(self) -> dt.datetime:
        now = self.at
        self.at += self.step
        return now


def add_stat(store: Store, at: dt.datetime, **values: Any) -> None:
    row = {
        "id": uuid.uuid4(),
        "created_at": at,
        "user_id": uuid.uuid4(),
        "agent_id": values.pop("agent_id", uuid.uuid4()),
        "workspace_id": uuid.uuid4(),
        "template_id": uuid.uuid4(),
    }
    row.update(values)
    store.insert_rows(workspace_agent_stats, [row])


def test_refresh_interval() -> None:
    assert refresh_interval(30_000_000_000) == dt.timedelta(seconds=30)
    assert refresh_interval(1_500_000) == dt.timedelta(microseconds=1500)
    assert refresh_interval(0) == dt.timedelta(minutes=5)
    assert refresh_interval(-1) == dt.timedelta(minutes=1)


def test_go_spelling() -> None:
    assert rfc3339(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2026-01-02T03:04:05Z"
    assert rfc3339(dt.datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC)) == "2026-01-02T03:04:05.12Z"
    assert rfc3339(dt.datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=dt.UTC)) == "2026-01-02T03:04:05.000001Z"
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert rfc3339(dt.datetime(2026, 1, 2, 5, 4, 5, tzinfo=plus2)) == "2026-01-02T03:04:05Z"
    with pytest.raises(ValueError):
        rfc3339(dt.datetime(2026, 1, 2))
    assert json.dumps([go_float(-1.0), go_float(10.0), go_float(1.5), go_float(0.0), go_float(1e20)]) == (
        "[-1, 10, 1.5, 0, 100000000000000000000]"
    )
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            go_float(bad)


def test_first_refresh_and_body(store: Store) -> None:
    add_stat(store, T0 - dt.timedelta(minutes=1), session_count_vscode=1, rx_bytes=5, connection_median_latency_ms=2.5)
    clock = Clock(T0, step=dt.timedelta(milliseconds=7))
    cache = DeploymentStatsCache(store, INTERVAL, usage=False, clock=clock)
    assert cache.body() is None and cache.latest() is None
    delay = cache.tick()
    assert cache.computed == 1
    snap = cache.latest()
    assert snap is not None
    assert snap.aggregated_from == T0 + dt.timedelta(milliseconds=7) - dt.timedelta(minutes=15)
    assert snap.next_update_at - snap.collected_at == INTERVAL
    assert 0 < delay <= INTERVAL.total_seconds()
    body = cache.body()
    assert body is not None
    assert body == (
        b'{"aggregated_from":"2026-11-29T11:45:00.257Z","collected_at":"2026-11-29T12:00:00.264Z",'
        b'"next_update_at":"2026-11-29T12:00:30.264Z","workspaces":{"pending":0,"building":0,"running":0,'
        b'"failed":0,"stopped":0,"connection_latency_ms":{"p50":2.5,"p95":2.5},"rx_bytes":5,"tx_bytes":0},'
        b'"session_count":{"vscode":1,"ssh":0,"jetbrains":0,"reconnecting_pty":0}}\n'
    )


def test_no_data_latency_is_minus_one(store: Store) -> None:
    cache = DeploymentStatsCache(store, INTERVAL, usage=False, clock=Clock(T0))
    cache.tick()
    body = json.loads(cache.body() or b"")
    assert body["workspaces"]["connection_latency_ms"] == {"p50": -1, "p95": -1}
    assert b'"p50":-1,"p95":-1' in (cache.body() or b"")


def test_refresh_picks_up_new_rows(store: Store) -> None:
    clock = Clock(T0)
    cache = DeploymentStatsCache(store, INTERVAL, usage=False, clock=clock)
    cache.tick()
    first = cache.latest()
    assert first is not None and first.agents.session_count_ssh == 0
    add_stat(store, T0 + dt.timedelta(seconds=10), session_count_ssh=3)
    # Before next_update_at the cached value stands.
    clock.at = T0 + dt.timedelta(seconds=20)
    cache.tick()
    assert cache.latest() == first
    clock.at = T0 + INTERVAL + dt.timedelta(seconds=1)
    cache.tick()
    second = cache.latest()
    assert second is not None and second.agents.session_count_ssh == 3
    assert second.collected_at == clock.at
    assert cache.computed == 2


def test_workers_share_one_computation(store: Store) -> None:
    clock = Clock(T0)
    workers = [DeploymentStatsCache(store, INTERVAL, usage=False, clock=clock) for _ in range(3)]
    for w in workers:
        w.tick()
    assert [w.computed for w in workers] == [1, 0, 0]
    assert len({w.body() for w in workers}) == 1
    clock.at = T0 + INTERVAL + dt.timedelta(seconds=1)
    for w in reversed(workers):
        w.tick()
    assert [w.computed for w in workers] == [1, 0, 1]
    assert len({w.body() for w in workers}) == 1


def test_a_worker_waits_while_another_refreshes(store: Store) -> None:
    token = store.take_lease(statscache.LEASE_KEY, T0, statscache.LEASE_TTL)
    assert token is not None
    cache = DeploymentStatsCache(store, INTERVAL, usage=False, clock=Clock(T0))
    assert cache.tick() == statscache.WAIT_FOR_OTHER
    assert cache.body() is None and cache.computed == 0
    # A lease left behind by a dead worker expires.
    later = DeploymentStatsCache(store, INTERVAL, usage=False, clock=Clock(T0 + statscache.LEASE_TTL))
    later.tick()
    assert later.computed == 1


def test_leases(store: Store) -> None:
    ttl = dt.timedelta(minutes=1)
    first = store.take_lease("job", T0, ttl)
    assert first is not None
    assert store.take_lease("job", T0 + dt.timedelta(seconds=59), ttl) is None
    second = store.take_lease("job", T0 + ttl, ttl)
    assert second is not None and second != first
    store.release_lease("job", first)  # a stale token releases nothing
    assert store.take_lease("job", T0 + ttl, ttl) is None
    store.release_lease("job", second)
    assert store.take_lease("job", T0 + ttl, ttl) is not None
    store.upsert_site_config("job", "garbage")
    assert store.take_lease("job", T0, ttl) is not None


def test_usage_setting_must_match_to_share(store: Store) -> None:
    plain = DeploymentStatsCache(store, INTERVAL, usage=False, clock=Clock(T0))
    plain.tick()
    usage = DeploymentStatsCache(store, INTERVAL, usage=True, clock=Clock(T0))
    usage.tick()
    assert usage.computed == 1
    assert usage.latest() is not None and usage.latest().usage  # type: ignore[union-attr]


def test_unreadable_shared_value_is_recomputed(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    store.upsert_site_config(statscache.SNAPSHOT_KEY, "{}")
    cache = DeploymentStatsCache(store, INTERVAL, usage=False, clock=Clock(T0))
    with caplog.at_level(logging.WARNING, logger="coderapi.metricscache"):
        cache.tick()
    assert cache.computed == 1
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_snapshot_round_trip() -> None:
    snap = DeploymentStatsSnapshot(
        aggregated_from=T0 - dt.timedelta(minutes=15),
        collected_at=T0,
        next_update_at=T0 + INTERVAL,
        usage=True,
        workspaces=WorkspaceStatusCounts(1, 2, 3, 4, 5),
        agents=AgentStatsSummary(6, 7, 1.25, 38.599999999999994, 8, 9, 10, 11),
    )
    assert DeploymentStatsSnapshot.loads(snap.dumps()) == snap


class FlakyStore:
    """Delegates to a Store, failing the first `failures` stats computations."""

    def __init__(self, store: Store, failures: int) -> None:
        self.store = store
        self.failures = failures
        self.done = threading.Event()

    def get_deployment_stats(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("database is down")
        result = self.store.get_deployment_stats(*args, **kwargs)
        self.done.set()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_thread_retries_until_it_succeeds(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyStore(store, failures=2)
    cache = DeploymentStatsCache(flaky, INTERVAL, usage=False)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="coderapi.metricscache"):
        cache.start()
        try:
            assert flaky.done.wait(10), "the refresh never succeeded"
            for _ in range(100):
                if cache.body() is not None:
                    break
                threading.Event().wait(0.05)
        finally:
            cache.stop()
    assert cache.body() is not None
    assert not cache.running
    failures = [r for r in caplog.records if r.getMessage() == statscache.REFRESH_FAILED]
    assert len(failures) == 2
    # The lease was released after each failure, so the retry could take it again at once.
    assert store.take_lease(statscache.LEASE_KEY, dt.datetime.now(dt.UTC), statscache.LEASE_TTL) is not None


def test_start_is_idempotent_and_stop_ends_the_thread(store: Store) -> None:
    cache = DeploymentStatsCache(store, INTERVAL, usage=False)
    before = set(threading.enumerate())

    def started() -> set[threading.Thread]:
        return {t for t in set(threading.enumerate()) - before if t.name == cache.thread_name}

    cache.start()
    (thread,) = started()
    cache.start()
    assert started() == {thread}
    cache.stop()
    assert not cache.running
    assert not thread.is_alive()


def test_small_clock_skew_between_nodes_still_shares(store: Store) -> None:
    ahead = DeploymentStatsCache(store, INTERVAL, usage=False, clock=Clock(T0 + dt.timedelta(seconds=5)))
    ahead.tick()
    behind = DeploymentStatsCache(store, INTERVAL, usage=False, clock=Clock(T0))
    delay = behind.tick()
    assert behind.computed == 0
    assert delay <= INTERVAL.total_seconds() + statscache.JITTER
    # A result from far in the future is not trusted.
    future = DeploymentStatsCache(store, INTERVAL, usage=False, clock=Clock(T0 - dt.timedelta(minutes=5)))
    future.tick()
    assert future.computed == 1
