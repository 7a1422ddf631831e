"""`coderapi users …` against the configured database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import json
import pathlib
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from coderapi import testing
from coderapi.cli import main
from coderapi.database import Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli_env(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[dict[str, str]]:
    """The environment a CLI run sees: its own data directory, and PostgreSQL in the second run."""
    env = {"CODERAPI_DATA_DIR": str(tmp_path / "data")}
    if request.param == "postgres":
        from tests import services

        services.require_postgres()
        name = testing.unique_name("coderapi_cli")
        env["CODER_PG_CONNECTION_URL"] = testing.create_pg_database(name)
        yield env
        testing.drop_pg_database(name)
    else:
        yield env


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def db_store(env: dict[str, str]) -> Store:
    url = env.get("CODER_PG_CONNECTION_URL") or "sqlite:///" + env["CODERAPI_DATA_DIR"] + "/coderapi.db"
    return Store(url)


def test_create_prints_uuid_and_stores_user(cli_env: dict[str, str]) -> None:
    result = run(
        cli_env, "users", "create", "--username", "Alice", "--email", "alice@example.com", "--roles", "owner,auditor"
    )
    assert result.exit_code == 0, result.output
    user_id = uuid.UUID(result.stdout.strip())
    assert result.stdout == f"{user_id}\n"
    store = db_store(cli_env)
    try:
        user = store.get_user_by_username("alice")
        assert user is not None
        assert user.id == user_id
        assert user.rbac_roles == ("owner", "auditor")
        assert user.status == "active"
    finally:
        store.close()


def test_list_json_and_table(cli_env: dict[str, str]) -> None:
    run(cli_env, "users", "create", "--username", "alice", "--email", "alice@example.com")
    run(cli_env, "users", "create", "--username", "bob", "--email", "bob@example.com", "--roles", "template-admin")
    result = run(cli_env, "users", "list", "--output", "json")
    assert result.exit_code == 0
    users = json.loads(result.stdout)
    assert [u["username"] for u in users] == ["alice", "bob"]
    assert users[1]["roles"] == [{"name": "template-admin"}]
    assert users[0]["status"] == "active"
    table = run(cli_env, "users", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "USERNAME", "EMAIL", "STATUS", "ROLES"]
    assert "template-admin" in table[2]


def test_suspend_activate_delete(cli_env: dict[str, str]) -> None:
    run(cli_env, "users", "create", "--username", "alice", "--email", "alice@example.com")
    assert run(cli_env, "users", "suspend", "ALICE").exit_code == 0
    assert json.loads(run(cli_env, "users", "list", "-o", "json").stdout)[0]["status"] == "suspended"
    assert run(cli_env, "users", "activate", "alice").exit_code == 0
    assert json.loads(run(cli_env, "users", "list", "-o", "json").stdout)[0]["status"] == "active"
    assert run(cli_env, "users", "delete", "alice").exit_code == 0
    assert json.loads(run(cli_env, "users", "list", "-o", "json").stdout) == []
    # The name is free again after deletion.
    assert run(cli_env, "users", "create", "--username", "alice", "--email", "alice@example.com").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "create", "--username", "bad name", "--email", "a@example.com"), "invalid username"),
        (("users", "create", "--username", "me", "--email", "a@example.com"), "reserved"),
        (("users", "create", "--username", "x" * 33, "--email", "a@example.com"), "invalid username"),
        (("users", "create", "--username", "ok", "--email", "not-an-email"), "invalid email"),
        (("users", "create", "--username", "ok", "--email", "a@example.com", "--roles", "admin"), "unknown role"),
        (("users", "suspend", "ghost"), "no user named 'ghost'"),
        (("users", "delete", "ghost"), "no user named 'ghost'"),
    ],
)
def test_errors_are_one_line_and_nonzero(cli_env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    result = run(cli_env, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ")
    assert result.stdout == ""


def test_duplicate_username_case_insensitive(cli_env: dict[str, str]) -> None:
    assert run(cli_env, "users", "create", "--username", "alice", "--email", "a@example.com").exit_code == 0
    result = run(cli_env, "users", "create", "--username", "ALICE", "--email", "b@example.com")
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run(cli_env, "users", "create", "--username", "carol", "--email", "A@example.com")
    assert result.exit_code == 1


@pytest.mark.parametrize("command", [["users", "list"], ["tokens", "create", "--user", "x"]])
@pytest.mark.parametrize("url", ["postgres://u:pw@127.0.0.1:notaport/db", "postgres://[::1/db", "mysql://u:pw@h/db"])
def test_a_bad_postgres_url_is_one_line(tmp_path: pathlib.Path, command: list[str], url: str) -> None:
    from coderapi.testing import child_env
    from tests.conftest import assert_one_line_failure, run_coderapi

    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "data"), "CODER_PG_CONNECTION_URL": url})
    line = assert_one_line_failure(run_coderapi(*command, env=env), "pw", "::1", "mysql")
    assert "CODER_PG_CONNECTION_URL" in line, line


@pytest.mark.parametrize(
    "command",
    [["users", "create", "--username", "b", "--email", "b@example.com"], ["tokens", "create", "--user", "a"]],
)
def test_a_write_to_a_read_only_database_is_one_line(tmp_path: pathlib.Path, command: list[str]) -> None:
    import subprocess
    import sys

    from coderapi.testing import child_env
    from tests.conftest import assert_one_line_failure, coderapi_cli

    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "data")})
    coderapi_cli("users", "create", "--username", "a", "--email", "a@example.com", env=env)
    exe = str(pathlib.Path(sys.executable).parent / "coderapi")
    database = str(tmp_path / "data" / "coderapi.db")
    # The database file read-only even for root: a read-only bind mount of it in a mount namespace of
    # the command's own; the directory stays writable, so SQLite opens the file and fails on the write.
    argv = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', database, exe, *command]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    line = assert_one_line_failure(done)
    assert line == f"error: {command[0]} {command[1]}: (sqlite3.OperationalError) attempt to write a readonly database"
