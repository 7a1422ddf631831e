"""The deployment-stats queries on hand-built rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import pathlib
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from coderapi import testing
from coderapi.database import Store
from coderapi.database.stats import AgentStatsSummary, WorkspaceStatusCounts, interpolate, percentile_rows
from coderapi.database.tables import provisioner_jobs, workspace_agent_stats, workspace_builds, workspaces
from tests import services

NOW = dt.datetime(2026, 11, 29, 12, 30, 20, 123456, tzinfo=dt.UTC)
SINCE = NOW - dt.timedelta(minutes=15)
SEC = dt.timedelta(seconds=1)
US = dt.timedelta(microseconds=1)
TEMPLATE = uuid.uuid4()
OWNER = uuid.uuid4()


class Rows:
    """Builds workspaces, builds, jobs and agent stats in a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def workspace(self, *, deleted: bool = False) -> uuid.UUID:
        ws = uuid.uuid4()
        row = {
            "id": ws,
            "created_at": NOW - dt.timedelta(days=3),
            "updated_at": NOW - dt.timedelta(days=3),
            "owner_id": OWNER,
            "template_id": TEMPLATE,
            "name": f"ws-{ws.hex[:6]}",
            "deleted": deleted,
        }
        self.store.insert_rows(workspaces, [row])
        return ws

    def build(
        self,
        ws: uuid.UUID,
        number: int,
        transition: str = "start",
        *,
        started: bool = True,
        completed: bool = True,
        canceled: bool = False,
        error: str | None = None,
        updated_at: dt.datetime | None = None,
    ) -> None:
        job = uuid.uuid4()
        at = NOW - dt.timedelta(hours=10 - number)
        self.store.insert_rows(
            provisioner_jobs,
            [
                {
                    "id": job,
                    "created_at": at,
                    "updated_at": updated_at or at,
                    "started_at": at if started else None,
                    "canceled_at": at if canceled else None,
                    "completed_at": at if completed else None,
                    "error": error,
                }
            ],
        )
        self.store.insert_rows(
            workspace_builds,
            [
                {
                    "id": uuid.uuid4(),
                    "created_at": at,
                    "updated_at": at,
                    "workspace_id": ws,
                    "build_number": number,
                    "transition": transition,
                    "job_id": job,
                }
            ],
        )

    def stat(self, agent: uuid.UUID, created_at: dt.datetime, **values: Any) -> None:
        row = {
            "id": uuid.uuid4(),
            "created_at": created_at,
            "user_id": OWNER,
            "agent_id": agent,
            "workspace_id": uuid.uuid4(),
            "template_id": TEMPLATE,
            "connection_median_latency_ms": values.pop("latency", -1.0),
        }
        row.update(values)
        self.store.insert_rows(workspace_agent_stats, [row])


@pytest.fixture
def rows(store: Store) -> Rows:
    return Rows(store)


def test_empty_deployment(store: Store) -> None:
    assert store.get_deployment_workspace_stats(NOW) == WorkspaceStatusCounts(0, 0, 0, 0, 0)
    empty = AgentStatsSummary(0, 0, -1.0, -1.0, 0, 0, 0, 0)
    assert store.get_deployment_workspace_agent_stats(SINCE) == empty
    assert store.get_deployment_workspace_agent_usage_stats(SINCE, NOW) == empty
    assert store.get_deployment_stats(NOW, SINCE, usage=False) == (WorkspaceStatusCounts(0, 0, 0, 0, 0), empty)


def test_every_bucket_with_overlaps_and_gaps(store: Store, rows: Rows) -> None:
    # pending: no build at all, and a job that never started
    rows.workspace()
    rows.build(rows.workspace(), 1, started=False, completed=False)
    # building: started, neither completed nor canceled, updated within the 30 s grace (even in the future)
    rows.build(rows.workspace(), 1, completed=False, updated_at=NOW)
    rows.build(rows.workspace(), 1, completed=False, updated_at=NOW + 29 * SEC)
    # ... but not once updated_at - 30 s reaches now: in no bucket
    rows.build(rows.workspace(), 1, completed=False, updated_at=NOW + 30 * SEC)
    # running: completed start without error; the latest build decides, whatever the insert order
    rows.build(rows.workspace(), 1, "start")
    ws = rows.workspace()
    rows.build(ws, 3, "start")
    rows.build(ws, 1, "stop")
    rows.build(ws, 2, "start", error="old failure")
    # stopped
    rows.build(rows.workspace(), 1, "stop")
    ws = rows.workspace()
    rows.build(ws, 1, "start")
    rows.build(ws, 2, "stop")
    # failed: completed with an error (an empty one included), canceled with an error
    rows.build(rows.workspace(), 1, "start", error="exit status 1")
    rows.build(rows.workspace(), 1, "stop", error="")
    rows.build(rows.workspace(), 1, "start", completed=False, canceled=True, error="canceled")
    # overlap: never started yet failed counts as pending AND failed
    rows.build(rows.workspace(), 1, started=False, completed=True, error="no provisioner")
    rows.build(rows.workspace(), 1, started=False, completed=False, canceled=True, error="canceled early")
    # gaps: canceled without error, a successful delete
    rows.build(rows.workspace(), 1, "start", canceled=True)
    rows.build(rows.workspace(), 1, "delete")
    # deleted workspaces never count
    rows.build(rows.workspace(deleted=True), 1, "start")
    rows.workspace(deleted=True)

    assert store.get_deployment_workspace_stats(NOW) == WorkspaceStatusCounts(
        pending=4, building=2, running=2, failed=5, stopped=2
    )


def test_agent_stats_window_edges_and_sums(store: Store, rows: Rows) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    rows.stat(a, SINCE, rx_bytes=1000, tx_bytes=1000, latency=500.0, session_count_vscode=50)  # on the edge: out
    rows.stat(a, SINCE - dt.timedelta(hours=1), rx_bytes=1000, tx_bytes=1000, latency=400.0)  # out
    rows.stat(a, SINCE + US, rx_bytes=1, tx_bytes=2, latency=10.0, session_count_vscode=7)
    rows.stat(a, NOW - SEC, rx_bytes=4, tx_bytes=8, latency=30.0, session_count_vscode=1, session_count_ssh=2)
    rows.stat(b, NOW - 5 * SEC, rx_bytes=16, tx_bytes=32, latency=0.0, session_count_jetbrains=3)  # no latency
    rows.stat(b, NOW - 9 * SEC, rx_bytes=64, tx_bytes=128, latency=-1.0, session_count_jetbrains=9)
    rows.stat(b, NOW - 8 * SEC, rx_bytes=0, tx_bytes=0, latency=20.0, session_count_reconnecting_pty=4)

    got = store.get_deployment_workspace_agent_stats(SINCE)
    assert got == AgentStatsSummary(
        rx_bytes=1 + 4 + 16 + 64,
        tx_bytes=2 + 8 + 32 + 128,
        latency_p50_ms=20.0,  # of 10, 20, 30
        latency_p95_ms=29.0,  # 20 + 0.9 * (30 - 20)
        session_count_vscode=1,  # a's newest row
        session_count_ssh=2,
        session_count_jetbrains=3,  # b's newest row, though it reports no latency
        session_count_reconnecting_pty=0,
    )


def test_usage_variant(store: Store, rows: Rows) -> None:
    minute = NOW.replace(second=0, microsecond=0)  # 12:30:00, still incomplete at NOW
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    # a: latest complete minute 12:29 has two usage rows, summed; 12:30 is not complete yet
    rows.stat(a, minute - 2 * SEC * 60 + 10 * SEC, usage=True, session_count_vscode=5)
    rows.stat(a, minute - 55 * SEC, usage=True, session_count_vscode=2, rx_bytes=100, latency=12.0)
    rows.stat(a, minute - 10 * SEC, usage=True, session_count_ssh=1)
    rows.stat(a, minute - 30 * SEC, session_count_vscode=70, rx_bytes=7, tx_bytes=7, latency=0.0)  # not usage
    rows.stat(a, minute + 5 * SEC, usage=True, session_count_vscode=9)
    # b: only one usage minute in the window
    rows.stat(b, minute - 10 * 60 * SEC, usage=True, session_count_jetbrains=4, tx_bytes=3, latency=40.0)
    # c: a row exactly at `since` counts (>=); an earlier row of the same minute does not
    rows.stat(c, SINCE, usage=True, session_count_reconnecting_pty=6)
    rows.stat(c, SINCE - SEC, usage=True, session_count_reconnecting_pty=60)
    # d: only usage rows before the window
    rows.stat(d, SINCE - 120 * SEC, usage=True, session_count_vscode=100, latency=1000.0)

    got = store.get_deployment_workspace_agent_usage_stats(SINCE, NOW)
    assert got == AgentStatsSummary(
        rx_bytes=100,  # the latency-0 row's bytes are left out
        tx_bytes=3,
        latency_p50_ms=26.0,  # of 12, 40
        latency_p95_ms=12 + 0.95 * 28,
        session_count_vscode=2,
        session_count_ssh=1,
        session_count_jetbrains=4,
        session_count_reconnecting_pty=6,
    )
    # The default computation over the same rows: newest row per agent, bytes of every row.
    default = store.get_deployment_workspace_agent_stats(SINCE)
    assert (default.rx_bytes, default.tx_bytes) == (107, 10)
    assert default.session_count_vscode == 9
    assert store.get_deployment_stats(NOW, SINCE, usage=True)[1] == got
    assert store.get_deployment_stats(NOW, SINCE, usage=False)[1] == default


def test_sessions_from_newest_row_per_agent(store: Store, rows: Rows) -> None:
    agents = [uuid.uuid4() for _ in range(5)]
    expected = 0
    for i, agent in enumerate(agents):
        for j in range(4):
            rows.stat(agent, NOW - (j + 1) * 30 * SEC, session_count_vscode=10 * i + j)
        expected += 10 * i  # j == 0 is the newest
    assert store.get_deployment_workspace_agent_stats(SINCE).session_count_vscode == expected


# PERCENTILE_CONT: the SQLite path and the Python formula against PostgreSQL itself.


@pytest.fixture(scope="module")
def pg_conn() -> Iterator[Any]:
    services.require_postgres()
    import psycopg

    with psycopg.connect(testing.pg_admin_url(), autocommit=True) as conn:
        yield conn


def _pg_percentiles(conn: Any, values: list[float]) -> tuple[float, float]:
    row = conn.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v), percentile_cont(0.95) WITHIN GROUP (ORDER BY v) "
        "FROM unnest(%s::float8[]) AS v",
        (values,),
    ).fetchone()
    return float(row[0]), float(row[1])


def percentile_cont(sorted_values: list[float], fraction: float) -> float:
    """PERCENTILE_CONT as the SQLite path computes it: the rows `percentile_rows` names, `interpolate`d."""
    first, second, weight = percentile_rows(len(sorted_values), fraction)
    lo = sorted_values[first]
    return lo if first == second else interpolate(lo, sorted_values[second], weight)


@pytest.mark.postgres
def test_percentile_formula_matches_postgresql(pg_conn: Any) -> None:
    rng = random.Random(5)
    cases = [[1.0], [1.0, 2.0], [3.0, 1.0, 2.0], [0.1, 0.2, 0.3], [1e-9, 1e9], [5.0] * 7]
    cases += [[rng.lognormvariate(3, 1) for _ in range(n)] for n in (2, 3, 4, 19, 20, 21, 100, 101, 997)]
    for values in cases:
        ordered = sorted(values)
        assert (percentile_cont(ordered, 0.5), percentile_cont(ordered, 0.95)) == _pg_percentiles(pg_conn, values)


@pytest.mark.postgres
def test_sqlite_and_postgresql_agree_on_random_rows(tmp_path: pathlib.Path, pg_url: str, pg_conn: Any) -> None:
    sqlite = Store("sqlite:///" + str(tmp_path / "agree.db"))
    sqlite.migrate()
    pg = Store(pg_url)
    try:
        with pg.engine.begin() as conn:
            conn.execute(text("TRUNCATE workspace_agent_stats"))
        rng = random.Random(11)
        agents = [uuid.uuid4() for _ in range(40)]
        batch: list[dict[str, Any]] = []
        for _ in range(1500):
            at = NOW - dt.timedelta(microseconds=rng.randrange(20 * 60 * 1_000_000))
            batch.append(
                {
                    "id": uuid.uuid4(),
                    "created_at": at,
                    "user_id": OWNER,
                    "agent_id": rng.choice(agents),
                    "workspace_id": uuid.uuid4(),
                    "template_id": TEMPLATE,
                    "rx_bytes": rng.randrange(10**6),
                    "tx_bytes": rng.randrange(10**6),
                    "connection_median_latency_ms": rng.choice((0.0, -1.0, rng.lognormvariate(3, 0.8))),
                    "session_count_vscode": rng.randrange(3),
                    "session_count_ssh": rng.randrange(3),
                    "session_count_jetbrains": rng.randrange(3),
                    "session_count_reconnecting_pty": rng.randrange(3),
                    "usage": rng.random() < 0.3,
                }
            )
        for s in (sqlite, pg):
            s.insert_rows(workspace_agent_stats, batch)
        for usage in (False, True):
            assert sqlite.get_deployment_stats(NOW, SINCE, usage=usage) == pg.get_deployment_stats(
                NOW, SINCE, usage=usage
            )
        in_window = [r["connection_median_latency_ms"] for r in batch if r["created_at"] > SINCE]
        positive = [v for v in in_window if v > 0]
        got = sqlite.get_deployment_workspace_agent_stats(SINCE)
        assert (got.latency_p50_ms, got.latency_p95_ms) == _pg_percentiles(pg_conn, positive)
    finally:
        sqlite.close()
        pg.close()
