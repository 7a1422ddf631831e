"""The deployment-stats cache behind GET /deployment/stats (coderd's `metricscache`).

A background thread computes the stats at startup and then every `agent_stat_refresh_interval`; the
endpoint answers from memory and never computes. Failed refreshes are logged and retried with backoff
from 100 ms up to 1 minute.

Workers and nodes share one computation per interval: the result goes to `site_configs` with its
`next_update_at`, whoever finds it fresh adopts it, and whoever finds it stale takes a lease so only
one of them runs the queries while the others wait for its result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from marshmallow import Schema

from coderapi.database import Store
from coderapi.database.stats import AgentStatsSummary, WorkspaceStatusCounts
from coderapi.httpapi.jsonwire import encode
from coderapi.sdk.stats import deployment_stats_schema
from coderapi.services.loop import BackgroundLoop

if TYPE_CHECKING:
    from coderapi.runtime import Runtime

log = logging.getLogger("coderapi.metricscache")

# coderd looks at the last 15 minutes of agent stats.
WINDOW = dt.timedelta(minutes=15)
# coderd.New uses 5 minutes when the option is 0; metricscache uses 1 minute for anything below.
ZERO_INTERVAL = dt.timedelta(minutes=5)
NEGATIVE_INTERVAL = dt.timedelta(minutes=1)
RETRY_FIRST = 0.1
RETRY_MAX = 60.0
REFRESH_FAILED = "refresh metrics failed"

SNAPSHOT_KEY = "deployment_stats"
LEASE_KEY = "deployment_stats_refresh"
# Longer than any refresh takes; a worker that dies mid-refresh blocks the others at most this long.
LEASE_TTL = dt.timedelta(minutes=2)
# How often a worker looks again while another one is refreshing.
WAIT_FOR_OTHER = 0.25
# Spreads the workers' reads of a new result over a short time after it is due.
JITTER = 0.2
# A shared result collected this far in our future still counts (node clocks differ a little).
CLOCK_SKEW = dt.timedelta(minutes=1)

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def refresh_interval(ns: int) -> dt.timedelta:
    """The refresh interval for an `agent_stat_refresh_interval` value in nanoseconds."""
    if ns == 0:
        return ZERO_INTERVAL
    if ns < 0:
        return NEGATIVE_INTERVAL
    return dt.timedelta(microseconds=ns // 1000)


@dataclass(frozen=True)
class DeploymentStatsSnapshot:
    aggregated_from: dt.datetime
    collected_at: dt.datetime
    next_update_at: dt.datetime
    usage: bool
    workspaces: WorkspaceStatusCounts
    agents: AgentStatsSummary

    def wire(self) -> dict[str, Any]:
        """The `codersdk.DeploymentStats` fields, for `deployment_stats_schema`."""
        w, a = self.workspaces, self.agents
        return {
            "aggregated_from": self.aggregated_from,
            "collected_at": self.collected_at,
            "next_update_at": self.next_update_at,
            "workspaces": {
                "pending": w.pending,
                "building": w.building,
                "running": w.running,
                "failed": w.failed,
                "stopped": w.stopped,
                "connection_latency_ms": {"p50": a.latency_p50_ms, "p95": a.latency_p95_ms},
                "rx_bytes": a.rx_bytes,
                "tx_bytes": a.tx_bytes,
            },
            "session_count": {
                "vscode": a.session_count_vscode,
                "ssh": a.session_count_ssh,
                "jetbrains": a.session_count_jetbrains,
                "reconnecting_pty": a.session_count_reconnecting_pty,
            },
        }

    def dumps(self) -> str:
        """The JSON kept in `site_configs` for the other workers."""
        data = asdict(self)
        for key in ("aggregated_from", "collected_at", "next_update_at"):
            data[key] = data[key].isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> DeploymentStatsSnapshot:
        """Parse `dumps` output. Raises ValueError (or KeyError/TypeError) when it is not one."""
        data = json.loads(text)
        return cls(
            aggregated_from=_aware(data["aggregated_from"]),
            collected_at=_aware(data["collected_at"]),
            next_update_at=_aware(data["next_update_at"]),
            usage=bool(data["usage"]),
            workspaces=WorkspaceStatusCounts(**data["workspaces"]),
            agents=AgentStatsSummary(**data["agents"]),
        )


def _aware(text: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError("timestamp without zone")
    return at


class DeploymentStatsCache(BackgroundLoop):
    """Holds the latest deployment stats and their encoded response body.

    `start()` runs the refresh loop in a daemon thread of the calling process (again in a forked
    child), `stop()` ends it.
    """

    thread_name = "deployment-stats"
    log = log
    failure = REFRESH_FAILED
    retry_first = RETRY_FIRST
    retry_max = RETRY_MAX
    stop_wait = 10.0

    def __init__(
        self,
        store: Store,
        interval: dt.timedelta,
        *,
        usage: bool,
        clock: Clock = utcnow,
        on_refresh: Callable[[float], None] | None = None,
        schema: Schema = deployment_stats_schema,
    ) -> None:
        super().__init__()
        self.schema = schema  # the wire form's codersdk.DeploymentStats
        self.store = store
        self.interval = interval
        self.usage = usage
        self.clock = clock
        self.on_refresh = on_refresh
        self.computed = 0  # refreshes this cache ran itself (the rest were adopted)
        self._snapshot: DeploymentStatsSnapshot | None = None
        self._body: bytes | None = None

    # What the endpoint reads.

    def latest(self) -> DeploymentStatsSnapshot | None:
        return self._snapshot

    def body(self) -> bytes | None:
        """The encoded 200 body, or None before the first value."""
        return self._body

    # One step of the loop, also called directly by tests.

    def tick(self) -> float:
        """Adopt the shared result when it is fresh, else compute one (when no other worker is
        already doing so). Returns the seconds until the next step. Raises the database's errors."""
        now = self.clock()
        shared = self._read_shared()
        if (
            shared is not None
            and shared.usage == self.usage
            and now < shared.next_update_at
            and shared.collected_at <= now + CLOCK_SKEW
        ):
            self._adopt(shared)
            wait = min(shared.next_update_at - now, self.interval).total_seconds()
            return wait + random.uniform(0, JITTER)  # noqa: S311
        token = self.store.take_lease(LEASE_KEY, now, LEASE_TTL)
        if token is None:
            return WAIT_FOR_OTHER
        try:
            snapshot = self.compute()
            self.store.upsert_site_config(SNAPSHOT_KEY, snapshot.dumps())
        finally:
            self.store.release_lease(LEASE_KEY, token)
        self._adopt(snapshot)
        return max(0.0, (snapshot.next_update_at - self.clock()).total_seconds())

    def compute(self) -> DeploymentStatsSnapshot:
        """Run the queries now, as coderd's `refreshDeploymentStats` does (without sharing)."""
        started = time.perf_counter()
        now = self.clock()
        since = now - WINDOW
        workspaces, agents = self.store.get_deployment_stats(now, since, usage=self.usage)
        collected = self.clock()
        self.computed += 1
        if self.on_refresh is not None:
            self.on_refresh(time.perf_counter() - started)
        return DeploymentStatsSnapshot(
            aggregated_from=since,
            collected_at=collected,
            next_update_at=collected + self.interval,
            usage=self.usage,
            workspaces=workspaces,
            agents=agents,
        )

    def _read_shared(self) -> DeploymentStatsSnapshot | None:
        text = self.store.get_site_config(SNAPSHOT_KEY)
        if not text:
            return None
        try:
            return DeploymentStatsSnapshot.loads(text)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable shared deployment stats")
            return None

    def _adopt(self, snapshot: DeploymentStatsSnapshot) -> None:
        if snapshot == self._snapshot:
            return
        body = encode(self.schema.dump(snapshot.wire()))
        # Readers see either the old pair or the new one: the body is what they send.
        self._body = body
        self._snapshot = snapshot


def from_runtime(rt: Runtime, on_refresh: Callable[[float], None] | None = None) -> DeploymentStatsCache:
    """The app's cache, configured from its options (`agent_stat_refresh_interval`, the
    `workspace-usage` experiment) and started."""
    cache = DeploymentStatsCache(
        rt.store,
        refresh_interval(int(rt.values.effective.agent_stat_refresh_interval or 0)),
        usage="workspace-usage" in rt.values.experiments,
        on_refresh=on_refresh,
        schema=rt.wire.deployment_stats,
    )
    cache.start()
    return cache
