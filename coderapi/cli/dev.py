"""`coderapi dev`: tools for demos and benchmarks, never needed to run the service.

`coderapi dev seed` fills the statistics tables with realistic workspaces, builds, jobs, agents and
agent-stat rows, so `/deployment/stats` has something to show and benchmarks have volume.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click
from click.decorators import FC

from coderapi.database import Store
from coderapi.database.tables import (
    provisioner_jobs,
    workspace_agent_stats,
    workspace_agents,
    workspace_builds,
    workspaces,
)

# How the latest build of a seeded workspace ends up, with its share of workspaces. The shapes cover
# every bucket of /deployment/stats plus the ones coderd counts in none (canceled, deleted).
LATEST_BUILD_SHAPES: tuple[tuple[str, float], ...] = (
    ("running", 0.55),
    ("stopped", 0.22),
    ("failed", 0.06),
    ("pending", 0.04),
    ("building", 0.04),
    ("canceled", 0.03),
    ("deleted", 0.03),
    ("no_build", 0.01),
    ("never_started_failed", 0.02),
)
DELETED_WORKSPACE_SHARE = 0.02
# Share of agent-stat rows from legacy agents that report no latency (0).
NO_LATENCY_SHARE = 0.1
# Share of agent-stat rows that are usage reports (the `workspace-usage` experiment).
USAGE_SHARE = 0.2


@dataclass(frozen=True)
class SeedPlan:
    workspaces: int
    agent_stats: int
    # Agent-stat rows are spread evenly over this much time before `now`.
    span: dt.timedelta
    now: dt.datetime
    seed: int = 0


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass
class SeededWorkspaces:
    workspaces: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    builds: list[dict[str, Any]]
    agents: list[dict[str, Any]]


def _shape(rng: random.Random) -> str:
    pick = rng.random()
    for name, share in LATEST_BUILD_SHAPES:
        pick -= share
        if pick < 0:
            return name
    return LATEST_BUILD_SHAPES[0][0]


def generate_workspaces(plan: SeedPlan) -> SeededWorkspaces:
    """Workspaces with one to three builds each (earlier builds succeeded), their jobs, and one
    agent per workspace that has a build."""
    rng = random.Random(plan.seed)  # noqa: S311 (demo data, not secrets)
    owners = [_uuid(rng) for _ in range(max(1, plan.workspaces // 5))]
    templates = [_uuid(rng) for _ in range(20)]
    out = SeededWorkspaces([], [], [], [])
    for i in range(plan.workspaces):
        created = plan.now - dt.timedelta(days=rng.uniform(1, 90))
        ws_id = _uuid(rng)
        out.workspaces.append(
            {
                "id": ws_id,
                "created_at": created,
                "updated_at": created,
                "owner_id": rng.choice(owners),
                "template_id": rng.choice(templates),
                "name": f"ws-{i}",
                "deleted": rng.random() < DELETED_WORKSPACE_SHARE,
            }
        )
        shape = _shape(rng)
        if shape == "no_build":
            continue
        builds = rng.randint(1, 3)
        at = created
        for number in range(1, builds + 1):
            at = at + dt.timedelta(hours=rng.uniform(1, 24))
            latest = number == builds
            job_id = _uuid(rng)
            job, transition = _job(rng, job_id, at, shape if latest else "running", plan.now)
            out.jobs.append(job)
            out.builds.append(
                {
                    "id": _uuid(rng),
                    "created_at": at,
                    "updated_at": at,
                    "workspace_id": ws_id,
                    "build_number": number,
                    "transition": transition if latest else rng.choice(("start", "stop")),
                    "job_id": job_id,
                }
            )
        agent = {"id": _uuid(rng), "created_at": created, "updated_at": at, "name": "main", "workspace_id": ws_id}
        out.agents.append(agent)
    return out


def _job(
    rng: random.Random, job_id: uuid.UUID, at: dt.datetime, shape: str, now: dt.datetime
) -> tuple[dict[str, Any], str]:
    """A provisioner job in the given shape, and the build transition that goes with it."""
    at = min(at, now - dt.timedelta(minutes=5))
    started = at + dt.timedelta(seconds=rng.uniform(1, 30))
    done = started + dt.timedelta(seconds=rng.uniform(20, 300))
    job: dict[str, Any] = {
        "id": job_id,
        "created_at": at,
        "updated_at": done,
        "started_at": started,
        "canceled_at": None,
        "completed_at": done,
        "error": None,
    }
    transition = "start"
    if shape == "stopped":
        transition = "stop"
    elif shape == "failed":
        job["error"] = "terraform apply: exit status 1"
    elif shape == "pending":
        job.update(started_at=None, completed_at=None, updated_at=at)
    elif shape == "building":
        job.update(completed_at=None, updated_at=now - dt.timedelta(seconds=rng.uniform(1, 60)))
    elif shape == "canceled":
        job.update(canceled_at=done)
    elif shape == "deleted":
        transition = "delete"
    elif shape == "never_started_failed":
        job.update(started_at=None, completed_at=done, error="provisioner daemon unavailable")
    return job, transition


def generate_agent_stats(
    plan: SeedPlan, agents: list[dict[str, Any]], workspaces_by_id: dict[Any, dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """`plan.agent_stats` rows from random agents, created evenly over `plan.span` before `plan.now`."""
    if not agents:
        return
    rng = random.Random(plan.seed + 1)  # noqa: S311 (demo data, not secrets)
    span_us = max(1, int(plan.span / dt.timedelta(microseconds=1)))
    for _ in range(plan.agent_stats):
        agent = agents[rng.randrange(len(agents))]
        ws = workspaces_by_id[agent["workspace_id"]]
        usage = rng.random() < USAGE_SHARE
        sessions = [rng.choice((0, 0, 0, 1, 1, 2)) for _ in range(4)]
        latency = 0.0 if rng.random() < NO_LATENCY_SHARE else round(rng.lognormvariate(3.5, 0.6), 3)
        yield {
            "id": _uuid(rng),
            "created_at": plan.now - dt.timedelta(microseconds=rng.randrange(span_us)),
            "user_id": ws["owner_id"],
            "agent_id": agent["id"],
            "workspace_id": ws["id"],
            "template_id": ws["template_id"],
            "connection_count": 0 if usage else sum(sessions),
            "rx_packets": 0 if usage else rng.randrange(10_000),
            "rx_bytes": 0 if usage else rng.randrange(5_000_000),
            "tx_packets": 0 if usage else rng.randrange(10_000),
            "tx_bytes": 0 if usage else rng.randrange(5_000_000),
            "connection_median_latency_ms": 0.0 if usage else latency,
            "session_count_vscode": sessions[0],
            "session_count_jetbrains": sessions[1],
            "session_count_reconnecting_pty": sessions[2],
            "session_count_ssh": sessions[3],
            "usage": usage,
        }


@dataclass(frozen=True)
class SeedResult:
    workspaces: int
    builds: int
    agents: int
    agent_stats: int
    seconds: float


def seed_store(store: Store, plan: SeedPlan) -> SeedResult:
    """Insert a plan's rows into `store` (added to whatever is there) and refresh planner statistics."""
    started = time.perf_counter()
    data = generate_workspaces(plan)
    store.insert_rows(workspaces, data.workspaces)
    store.insert_rows(provisioner_jobs, data.jobs)
    store.insert_rows(workspace_builds, data.builds)
    store.insert_rows(workspace_agents, data.agents)
    by_id = {w["id"]: w for w in data.workspaces}
    stats = store.insert_rows(workspace_agent_stats, generate_agent_stats(plan, data.agents, by_id))
    store.analyze_stats_tables()
    return SeedResult(len(data.workspaces), len(data.builds), len(data.agents), stats, time.perf_counter() - started)


@click.group("dev")
def dev() -> None:
    """Tools for demos and benchmarks."""


def _count_option(flag: str, name: str, default: int, help: str) -> Callable[[FC], FC]:
    return click.option(flag, name, type=click.IntRange(min=0), default=default, show_default=True, help=help)


@dev.command("seed")
@_count_option("--workspaces", "n_workspaces", 100, "Workspaces to create, with their builds, jobs and one agent each.")
@_count_option("--agent-stats", "n_agent_stats", 1000, "Agent-stat rows to create.")
@click.option(
    "--span",
    "span_minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Minutes before now over which agent-stat rows are spread (/deployment/stats looks at the last 15).",
)
@click.option(
    "--seed",
    "rng_seed",
    type=int,
    default=None,
    help="Random seed, for repeatable data (rows get fresh ids only with a new seed).  [default: random]",
)
def seed(n_workspaces: int, n_agent_stats: int, span_minutes: float, rng_seed: int | None) -> None:
    """Fill the configured database with realistic workspaces and agent statistics."""
    from coderapi.cli.context import open_store

    plan = SeedPlan(
        workspaces=n_workspaces,
        agent_stats=n_agent_stats,
        span=dt.timedelta(minutes=span_minutes),
        now=dt.datetime.now(dt.UTC),
        seed=rng_seed if rng_seed is not None else random.SystemRandom().getrandbits(32),
    )
    store = open_store()
    try:
        result = seed_store(store, plan)
    finally:
        store.close()
    click.echo(
        f"seeded {result.workspaces} workspaces, {result.builds} builds, {result.agents} agents and "
        f"{result.agent_stats} agent stats in {result.seconds:.1f}s"
    )
