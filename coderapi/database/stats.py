"""Queries behind `/deployment/stats`: workspace status buckets and agent traffic, latency and sessions.

They mirror coderd's `GetDeploymentWorkspaceStats`, `GetDeploymentWorkspaceAgentStats` and
`GetDeploymentWorkspaceAgentUsageStats`, with the same results. PostgreSQL uses coderd's LEFT JOIN
LATERAL and PERCENTILE_CONT, with DISTINCT ON for "each agent's newest row" (coderd's ROW_NUMBER picks
the same row, slower). SQLite has neither LATERAL nor PERCENTILE_CONT: it gets an equivalent correlated
subquery, and the percentiles are read from the sorted rows and interpolated in Python with
PostgreSQL's own formula (tests compare both databases on the same rows).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, text
from sqlalchemy.sql.elements import TextClause

from coderapi.database.tables import (
    provisioner_jobs,
    workspace_agent_stats,
    workspace_agents,
    workspace_builds,
    workspaces,
)
from coderapi.database.types import UTCDateTime

# coderd counts a job as building only while `updated_at - INTERVAL '30 seconds' < NOW()`.
BUILDING_GRACE = dt.timedelta(seconds=30)

# Rows per INSERT statement when seeding; large enough to amortise round trips, small enough for
# SQLite's bound-variable limit (32766) with the widest table (17 columns).
INSERT_BATCH = 1_000


@dataclass(frozen=True)
class WorkspaceStatusCounts:
    """Workspaces per status of their latest build. Buckets may overlap and need not add up."""

    pending: int
    building: int
    running: int
    failed: int
    stopped: int


@dataclass(frozen=True)
class AgentStatsSummary:
    """Agent traffic, latency percentiles (-1: no data) and open sessions over a time window."""

    rx_bytes: int
    tx_bytes: int
    latency_p50_ms: float
    latency_p95_ms: float
    session_count_vscode: int
    session_count_ssh: int
    session_count_jetbrains: int
    session_count_reconnecting_pty: int


def percentile_rows(count: int, fraction: float) -> tuple[int, int, float]:
    """Which sorted rows `PERCENTILE_CONT(fraction)` reads among `count`, and the weight of the second:
    PostgreSQL's `floor` / `ceil` of `fraction * (count - 1)`."""
    position = fraction * (count - 1)
    first = math.floor(position)
    return first, math.ceil(position), position - first


def interpolate(lo: float, hi: float, weight: float) -> float:
    """PostgreSQL's float8 lerp, `lo + (weight * (hi - lo))`, so results match it bit for bit."""
    return lo + (weight * (hi - lo))


def _sql(*fragments: str) -> str:
    """One statement from constant SQL fragments (never from input)."""
    return "".join(fragments)


_COUNTS = """
SELECT
    COUNT(*) FILTER (WHERE started_at IS NULL) AS pending,
    COUNT(*) FILTER (WHERE started_at IS NOT NULL AND canceled_at IS NULL AND completed_at IS NULL
                     AND updated_at < :building_cutoff) AS building,
    COUNT(*) FILTER (WHERE completed_at IS NOT NULL AND canceled_at IS NULL AND error IS NULL
                     AND transition = 'start') AS running,
    COUNT(*) FILTER (WHERE (canceled_at IS NOT NULL AND error IS NOT NULL)
                        OR (completed_at IS NOT NULL AND error IS NOT NULL)) AS failed,
    COUNT(*) FILTER (WHERE completed_at IS NOT NULL AND canceled_at IS NULL AND error IS NULL
                     AND transition = 'stop') AS stopped
FROM latest_builds
"""

# Every non-deleted workspace with its latest build (highest build_number) and that build's job; a
# workspace without builds keeps one row of NULLs, which counts as pending.
_WORKSPACE_STATS_PG = _sql(
    """
WITH latest_builds AS (
    SELECT latest_build.*
    FROM workspaces
    LEFT JOIN LATERAL (
        SELECT workspace_builds.transition, provisioner_jobs.started_at, provisioner_jobs.updated_at,
               provisioner_jobs.canceled_at, provisioner_jobs.completed_at, provisioner_jobs.error
        FROM workspace_builds
        LEFT JOIN provisioner_jobs ON provisioner_jobs.id = workspace_builds.job_id
        WHERE workspace_builds.workspace_id = workspaces.id
        ORDER BY workspace_builds.build_number DESC
        LIMIT 1
    ) AS latest_build ON TRUE
    WHERE workspaces.deleted = false
)""",
    _COUNTS,
)

_WORKSPACE_STATS_SQLITE = _sql(
    """
WITH latest_builds AS (
    SELECT workspace_builds.transition, provisioner_jobs.started_at, provisioner_jobs.updated_at,
           provisioner_jobs.canceled_at, provisioner_jobs.completed_at, provisioner_jobs.error
    FROM workspaces
    LEFT JOIN workspace_builds ON workspace_builds.id = (
        SELECT latest.id FROM workspace_builds AS latest
        WHERE latest.workspace_id = workspaces.id
        ORDER BY latest.build_number DESC
        LIMIT 1
    )
    LEFT JOIN provisioner_jobs ON provisioner_jobs.id = workspace_builds.job_id
    WHERE workspaces.deleted = 0
)""",
    _COUNTS,
)

# Rows reporting a latency (legacy agents send 0 or -1).
_REPORTS_LATENCY = "connection_median_latency_ms > 0"

# Bytes from every row of the window (with `workspace-usage`, only from rows reporting a latency), and
# the latency percentiles (PostgreSQL) or how many latencies there are (SQLite: the percentiles are
# read afterwards) from rows reporting one.
_TRAFFIC = """
SELECT
    COALESCE(SUM(rx_bytes), 0) AS rx_bytes,
    COALESCE(SUM(tx_bytes), 0) AS tx_bytes,
    {latency}
FROM workspace_agent_stats
WHERE created_at > :since{usage}
"""
_PERCENTILE_PG = "COALESCE(PERCENTILE_CONT({fraction}) WITHIN GROUP (ORDER BY connection_median_latency_ms){only}, -1)"


def _traffic_sql(pg: bool, usage: bool) -> str:
    # With `workspace-usage` every row read reports a latency already.
    only = "" if usage else f" FILTER (WHERE {_REPORTS_LATENCY})"
    if pg:
        p50, p95 = (_PERCENTILE_PG.format(fraction=fraction, only=only) for fraction in ("0.5", "0.95"))
        latency = f"{p50} AS p50,\n    {p95} AS p95"
    else:
        latency = f"COUNT(*){only} AS latencies"
    return _TRAFFIC.format(latency=latency, usage=f" AND {_REPORTS_LATENCY}" if usage else "")


_SESSION_SUMS = """
SELECT
    COALESCE(SUM(session_count_vscode), 0) AS vscode,
    COALESCE(SUM(session_count_ssh), 0) AS ssh,
    COALESCE(SUM(session_count_jetbrains), 0) AS jetbrains,
    COALESCE(SUM(session_count_reconnecting_pty), 0) AS reconnecting_pty
"""

# Sessions from each agent's newest row in the window. coderd keeps `ROW_NUMBER() OVER (PARTITION BY
# agent_id ORDER BY created_at DESC) = 1`; DISTINCT ON picks the same row (any one of tied newest rows,
# as ROW_NUMBER does) and sorts about twice as fast on PostgreSQL. SQLite has no DISTINCT ON.
_SESSIONS_PG = _sql(
    _SESSION_SUMS,
    """
FROM (
    SELECT DISTINCT ON (agent_id)
        session_count_vscode, session_count_ssh, session_count_jetbrains, session_count_reconnecting_pty
    FROM workspace_agent_stats
    WHERE created_at > :since
    ORDER BY agent_id, created_at DESC
) AS newest
""",
)

_SESSIONS_SQLITE = _sql(
    _SESSION_SUMS,
    """
FROM (
    SELECT session_count_vscode, session_count_ssh, session_count_jetbrains, session_count_reconnecting_pty,
           ROW_NUMBER() OVER (PARTITION BY agent_id ORDER BY created_at DESC) AS rn
    FROM workspace_agent_stats
    WHERE created_at > :since
) AS numbered
WHERE rn = 1
""",
)

# `workspace-usage` sessions: usage rows of each agent's latest complete minute, summed within it.
_USAGE_SESSIONS = """
WITH latest_minutes AS (
    SELECT agent_id, MAX({minute_of_row}) AS minute_bucket
    FROM workspace_agent_stats
    WHERE created_at >= :since AND created_at < :current_minute AND usage
    GROUP BY agent_id
)
{sums}FROM latest_minutes
JOIN workspace_agent_stats AS s
  ON s.agent_id = latest_minutes.agent_id
 AND s.created_at >= :since
 AND {minute_of_s} = latest_minutes.minute_bucket
 AND s.usage
"""
_USAGE_SESSIONS_PG = _USAGE_SESSIONS.format(
    sums=_SESSION_SUMS.lstrip(),
    minute_of_row="date_trunc('minute', created_at)",
    minute_of_s="date_trunc('minute', s.created_at)",
)
_USAGE_SESSIONS_SQLITE = _USAGE_SESSIONS.format(
    sums=_SESSION_SUMS.lstrip(),
    minute_of_row="strftime('%Y-%m-%d %H:%M', created_at)",
    minute_of_s="strftime('%Y-%m-%d %H:%M', s.created_at)",
)

# The rows around a percentile's position, in PERCENTILE_CONT's order.
_LATENCY_AT_SQLITE = """
SELECT connection_median_latency_ms FROM workspace_agent_stats
WHERE created_at > :since AND connection_median_latency_ms > 0
ORDER BY connection_median_latency_ms
LIMIT :count OFFSET :offset
"""

# PostgreSQL settings for these queries only (SET LOCAL ends with the transaction): JIT compilation
# costs more than it saves on them; their sorts fit in memory with a larger work_mem; and parallel
# workers only add contention (each one builds the same hash table again), as the refresh already
# runs its three queries at once.
_PG_TUNING = (
    "SET LOCAL jit = off",
    "SET LOCAL work_mem = '128MB'",
    "SET LOCAL max_parallel_workers_per_gather = 0",
)


def _stmt(sql: str, *times: str) -> TextClause:
    """A text statement whose named time parameters bind as UTC timestamps on either database."""
    return text(sql).bindparams(*(bindparam(name, type_=UTCDateTime) for name in times))


Part = Callable[[Connection], dict[str, Any]]


def _run(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    if conn.dialect.name == "postgresql":
        for setting in _PG_TUNING:
            conn.execute(text(setting))
    return conn.execute(_stmt(sql, *(name for name in params if name in _TIME_PARAMS)), params).one()


_TIME_PARAMS = frozenset({"since", "current_minute", "building_cutoff"})


def _workspaces_part(now: dt.datetime) -> Part:
    def run(conn: Connection) -> dict[str, Any]:
        sql = _WORKSPACE_STATS_PG if conn.dialect.name == "postgresql" else _WORKSPACE_STATS_SQLITE
        row = _run(conn, sql, {"building_cutoff": now + BUILDING_GRACE})
        return {name: int(getattr(row, name)) for name in ("pending", "building", "running", "failed", "stopped")}

    return run


def _traffic_part(since: dt.datetime, usage: bool) -> Part:
    def run(conn: Connection) -> dict[str, Any]:
        pg = conn.dialect.name == "postgresql"
        row = _run(conn, _traffic_sql(pg, usage), {"since": since})
        if pg:
            p50, p95 = float(row.p50), float(row.p95)
        else:
            p50, p95 = _sqlite_percentiles(conn, since, int(row.latencies))
        return {
            "rx_bytes": int(row.rx_bytes),
            "tx_bytes": int(row.tx_bytes),
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
        }

    return run


def _sessions_part(since: dt.datetime, now: dt.datetime, usage: bool) -> Part:
    """Session counts; `now` matters only with `usage` (its minute is still incomplete)."""

    def run(conn: Connection) -> dict[str, Any]:
        pg = conn.dialect.name == "postgresql"
        if usage:
            params = {"since": since, "current_minute": now.replace(second=0, microsecond=0)}
            row = _run(conn, _USAGE_SESSIONS_PG if pg else _USAGE_SESSIONS_SQLITE, params)
        else:
            row = _run(conn, _SESSIONS_PG if pg else _SESSIONS_SQLITE, {"since": since})
        return {f"session_count_{name}": int(getattr(row, name)) for name in _SESSION_KINDS}

    return run


_SESSION_KINDS = ("vscode", "ssh", "jetbrains", "reconnecting_pty")


class StatsQueries:
    engine: Engine

    def get_deployment_workspace_stats(self, now: dt.datetime) -> WorkspaceStatusCounts:
        """Non-deleted workspaces per status of their latest build, as of `now`."""
        return WorkspaceStatusCounts(**self._parts([_workspaces_part(now)]))

    def get_deployment_workspace_agent_stats(self, since: dt.datetime) -> AgentStatsSummary:
        """Agent numbers over rows created after `since` (coderd's default computation)."""
        return AgentStatsSummary(**self._parts([_traffic_part(since, False), _sessions_part(since, since, False)]))

    def get_deployment_workspace_agent_usage_stats(self, since: dt.datetime, now: dt.datetime) -> AgentStatsSummary:
        """Agent numbers with the `workspace-usage` experiment on: traffic only from rows reporting a
        latency; sessions from usage rows of each agent's latest complete minute before `now`."""
        return AgentStatsSummary(**self._parts([_traffic_part(since, True), _sessions_part(since, now, True)]))

    def get_deployment_stats(
        self, now: dt.datetime, since: dt.datetime, *, usage: bool
    ) -> tuple[WorkspaceStatusCounts, AgentStatsSummary]:
        """Everything /deployment/stats shows. On PostgreSQL the three queries run at once on their own
        connections, so a refresh takes as long as the slowest one."""
        parts = [_workspaces_part(now), _traffic_part(since, usage), _sessions_part(since, now, usage)]
        if self.engine.dialect.name == "postgresql":
            with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="deployment-stats") as pool:
                results = list(pool.map(self._part, parts))
        else:
            results = [self._part(part) for part in parts]
        workspace = WorkspaceStatusCounts(**results[0])
        return workspace, AgentStatsSummary(**results[1], **results[2])

    def _part(self, part: Part) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return part(conn)

    def _parts(self, parts: list[Part]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for part in parts:
                merged.update(part(conn))
        return merged

    # Bulk loading, for `coderapi dev seed` and benchmarks.

    def insert_rows(self, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert `rows` into one of the statistics tables in batches; returns how many. PostgreSQL
        gets COPY, which is several times faster than multi-row INSERTs for large loads."""
        if table not in _SEEDABLE:
            raise ValueError(f"not a statistics table: {table.name}")
        total = 0
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                return _copy_rows(conn, table, rows)
            batch: list[Mapping[str, Any]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= INSERT_BATCH:
                    conn.execute(table.insert(), batch)
                    total += len(batch)
                    batch = []
            if batch:
                conn.execute(table.insert(), batch)
                total += len(batch)
        return total

    def analyze_stats_tables(self) -> None:
        """Refresh the planner's statistics after a bulk load (PostgreSQL and SQLite)."""
        with self.engine.begin() as conn:
            for table in _SEEDABLE:
                conn.execute(text(f"ANALYZE {table.name}"))


_SEEDABLE = (workspaces, provisioner_jobs, workspace_builds, workspace_agents, workspace_agent_stats)


def _copy_rows(conn: Connection, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
    columns = [c.name for c in table.columns]
    raw = conn.connection.driver_connection
    total = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row([_copy_value(table, name, row) for name in columns])
            total += 1
    return total


def _copy_value(table: Table, name: str, row: Mapping[str, Any]) -> Any:
    if name in row:
        return row[name]
    default = table.c[name].server_default
    if default is None:
        return None
    arg = str(getattr(default, "arg", ""))
    return {"false": False, "true": True}.get(arg, arg)


def _sqlite_percentiles(conn: Connection, since: dt.datetime, count: int) -> tuple[float, float]:
    """p50 and p95 of the window's positive latencies, reading only the rows each one needs."""
    if count == 0:
        return -1.0, -1.0
    stmt = _stmt(_LATENCY_AT_SQLITE, "since")
    result = []
    for fraction in (0.5, 0.95):
        first, second, weight = percentile_rows(count, fraction)
        values = conn.execute(stmt, {"since": since, "count": second - first + 1, "offset": first}).scalars().all()
        lo = float(values[0])
        result.append(lo if first == second else interpolate(lo, float(values[1]), weight))
    return result[0], result[1]
