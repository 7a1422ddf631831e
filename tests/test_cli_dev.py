"""`coderapi dev seed`: realistic statistics data in the configured database."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
from click.testing import CliRunner
from sqlalchemy import Table, func, select

from coderapi.cli import main
from coderapi.cli.dev import SeedPlan, generate_agent_stats, generate_workspaces
from coderapi.database import Store
from coderapi.database.tables import workspace_agent_stats, workspace_agents, workspace_builds, workspaces


def count(store: Store, table: Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def seed_env(store: Store, tmp_path: pathlib.Path) -> dict[str, str]:
    env = {"CODERAPI_DATA_DIR": str(tmp_path), "CODER_PG_CONNECTION_URL": ""}
    if store.dialect == "postgresql":
        env["CODER_PG_CONNECTION_URL"] = store.url
    return env


def test_seed_fills_every_bucket(store: Store, tmp_path: pathlib.Path) -> None:
    args = ["dev", "seed", "--workspaces", "400", "--agent-stats", "3000", "--span", "20", "--seed", "3"]
    result = CliRunner().invoke(main, args, env=seed_env(store, tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("seeded 400 workspaces, ")
    assert "3000 agent stats" in result.output
    assert count(store, workspaces) == 400
    assert count(store, workspace_agent_stats) == 3000
    assert count(store, workspace_builds) >= count(store, workspace_agents) > 300

    now = dt.datetime.now(dt.UTC)
    counts, agents = store.get_deployment_stats(now, now - dt.timedelta(minutes=15), usage=False)
    assert min(counts.pending, counts.building, counts.running, counts.failed, counts.stopped) > 0
    assert counts.running > counts.stopped > counts.failed
    assert agents.rx_bytes > 0 and agents.tx_bytes > 0
    assert 0 < agents.latency_p50_ms < agents.latency_p95_ms
    assert agents.session_count_vscode > 0

    # A second run with another seed adds to the data.
    again = CliRunner().invoke(main, [*args[:-1], "4"], env=seed_env(store, tmp_path))
    assert again.exit_code == 0, again.output
    assert count(store, workspaces) == 800


def test_seed_rejects_bad_numbers(tmp_path: pathlib.Path) -> None:
    env = {"CODERAPI_DATA_DIR": str(tmp_path), "CODER_PG_CONNECTION_URL": ""}
    for args in (["--workspaces", "-1"], ["--agent-stats", "many"], ["--span", "0"]):
        result = CliRunner().invoke(main, ["dev", "seed", *args], env=env)
        assert result.exit_code == 2
        assert "Invalid value" in result.output


@pytest.mark.parametrize("n", [0, 1, 50])
def test_generated_rows_are_consistent(n: int) -> None:
    now = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
    plan = SeedPlan(workspaces=n, agent_stats=10 * n, span=dt.timedelta(minutes=10), now=now, seed=9)
    data = generate_workspaces(plan)
    assert data == generate_workspaces(plan)  # the seed makes it repeatable
    ids = {w["id"] for w in data.workspaces}
    jobs = {j["id"] for j in data.jobs}
    assert len(ids) == n
    assert all(b["workspace_id"] in ids and b["job_id"] in jobs for b in data.builds)
    assert all(j["updated_at"] <= now for j in data.jobs if j["completed_at"] is not None)
    stats = list(generate_agent_stats(plan, data.agents, {w["id"]: w for w in data.workspaces}))
    assert len(stats) == (10 * n if data.agents else 0)
    agent_ids = {a["id"] for a in data.agents}
    assert all(s["agent_id"] in agent_ids and now - plan.span <= s["created_at"] <= now for s in stats)
