"""`coderapi server` and `coderapi db` before anything is served: help, --write-config, errors."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
import yaml
from click.testing import CliRunner, Result

from coderapi.cli import main


@pytest.fixture
def runner(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    import os

    for name in list(os.environ):
        if name.upper().startswith(("CODER_", "CODERAPI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CODERAPI_DATA_DIR", str(tmp_path / "data"))
    yield CliRunner()


def run(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(main, list(args), env=env, catch_exceptions=False)


def test_main_lists_the_commands(runner: CliRunner) -> None:
    out = run(runner, "--help")
    assert out.exit_code == 0
    for name in ("server", "db", "users", "tokens"):
        assert name in out.output


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_server_help_prints_the_option_help(runner: CliRunner, flag: str) -> None:
    out = run(runner, "server", flag)
    assert out.exit_code == 0
    assert "--http-address" in out.output
    assert "CODER_HTTP_ADDRESS" in out.output
    assert "--prometheus-enable" in out.output


def test_write_config_prints_yaml_and_serves_nothing(runner: CliRunner) -> None:
    out = run(runner, "server", "--write-config", "--http-address", "127.0.0.1:4000")
    assert out.exit_code == 0
    doc = yaml.safe_load(out.stdout)
    assert doc["networking"]["http"]["httpAddress"] == "127.0.0.1:4000"


def test_write_config_reflects_the_environment(runner: CliRunner) -> None:
    out = run(runner, "server", "--write-config", env={"CODER_PROMETHEUS_ENABLE": "true"})
    assert out.exit_code == 0
    assert yaml.safe_load(out.stdout)["introspection"]["prometheus"]["enable"] is True


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--no-such-flag"], {}, "no-such-flag"),
        (["--http-address"], {}, "http-address"),
        (["--proxy-trusted-origins", "not-a-cidr"], {}, 'parse proxy origin "not-a-cidr"'),
        (["--tls-enable"], {}, "tls-cert-file and tls-key-file are required"),
        (["--log-filter", "("], {}, "compile log filter"),
        (["--prometheus-enable", "--prometheus-address", "127.0.0.1:http"], {}, "invalid port"),
        ([], {"CODERAPI_WORKERS": "many"}, "CODERAPI_WORKERS"),
        ([], {"CODER_PG_CONNECTION_URL": "postgres://postgres@127.0.0.1:9/nope?connect_timeout=1"}, "migrate database"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_1(
    runner: CliRunner, args: list[str], env: dict[str, str], needle: str
) -> None:
    out = run(runner, "server", *args, env=env)
    assert out.exit_code == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]


def test_db_migrate_creates_the_embedded_database(runner: CliRunner, tmp_path: pathlib.Path) -> None:
    out = run(runner, "db", "migrate")
    assert out.exit_code == 0, out.output
    assert "database migrated (sqlite)" in out.stdout
    assert (tmp_path / "data" / "coderapi.db").is_file()
    # Idempotent.
    assert run(runner, "db", "migrate").exit_code == 0


@pytest.mark.postgres
def test_db_migrate_postgres(runner: CliRunner, pg_url: str) -> None:
    out = run(runner, "db", "migrate", env={"CODER_PG_CONNECTION_URL": pg_url})
    assert out.exit_code == 0, out.output
    assert "database migrated (postgresql)" in out.stdout


def test_db_migrate_unreachable_database_is_one_line(runner: CliRunner) -> None:
    out = run(runner, "db", "migrate", env={"CODER_PG_CONNECTION_URL": "postgres://postgres@127.0.0.1:9/x"})
    assert out.exit_code == 1
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("error: migrate: ")


def test_write_config_leaves_out_external_auth_providers_from_the_environment(tmp_path: pathlib.Path) -> None:
    from coderapi.config import load
    from coderapi.testing import child_env
    from tests.conftest import coderapi_cli

    yaml_path = tmp_path / "in.yaml"
    yaml_path.write_text("externalAuthProviders:\n  - id: from-yaml\n    type: gitlab\n")
    env = child_env(
        {
            "CODERAPI_DATA_DIR": str(tmp_path / "data"),
            "CODER_CONFIG_PATH": str(yaml_path),
            "CODER_EXTERNAL_AUTH_0_ID": "from-env",
            "CODER_EXTERNAL_AUTH_0_TYPE": "github",
            "CODER_EXTERNAL_AUTH_0_CLIENT_ID": "client-id-x",
            "CODER_EXTERNAL_AUTH_0_CLIENT_SECRET": "s3cr3t-client-value",
            "CODER_EXTERNAL_AUTH_0_EXTRA_TOKEN_KEYS": "hidden-key-one hidden-key-two",
        }
    )
    out = coderapi_cli("server", "--write-config", env=env)
    for secret in ("s3cr3t-client-value", "hidden-key-one", "hidden-key-two", "from-env"):
        assert secret not in out
    written = yaml.safe_load(out)["externalAuthProviders"]
    assert [p["id"] for p in written] == ["from-yaml"]
    # The output used with the same environment lists each provider once.
    out_path = tmp_path / "out.yaml"
    out_path.write_text(out)
    again = load((), {**env, "CODER_CONFIG_PATH": str(out_path)})
    assert [p["id"] for p in again.get("external_auth")] == ["from-yaml", "from-env"]


BAD_PG_URLS = [
    ("postgres://u:pw@127.0.0.1:notaport/db", "invalid port: not a number"),
    ("postgres://u:pw@127.0.0.1:99999/db", "invalid port: out of range"),
    ("postgres://[::1/db", "invalid host"),
    ("mysql://u:pw@127.0.0.1/db", "the scheme must be postgres:// or postgresql://"),
    ("postgres://u:p%zzw@127.0.0.1/db", "invalid percent-encoded token"),
    ("postgres://u:pw@127.0.0.1/db?sslmode=pwmode", "invalid sslmode value"),
]


@pytest.mark.parametrize("command", [["server"], ["db", "migrate"]])
@pytest.mark.parametrize(("url", "reason"), BAD_PG_URLS)
def test_a_bad_postgres_url_is_one_line_without_its_text(
    tmp_path: pathlib.Path, command: list[str], url: str, reason: str
) -> None:
    from coderapi.testing import child_env
    from tests.conftest import assert_one_line_failure, run_coderapi

    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "data"), "CODER_PG_CONNECTION_URL": url})
    line = assert_one_line_failure(run_coderapi(*command, env=env), "pw", "p%zzw", "::1", "mysql")
    assert reason in line, line
    assert "CODER_PG_CONNECTION_URL" in line or "migrate" in line, line


def test_a_bad_postgres_conn_max_idle_is_refused(tmp_path: pathlib.Path) -> None:
    from coderapi.testing import child_env
    from tests.conftest import assert_one_line_failure, run_coderapi

    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "data")})
    line = assert_one_line_failure(run_coderapi("server", "--postgres-conn-max-idle=lots", env=env))
    assert line == (
        'error: Postgres Connection Max Idle (--postgres-conn-max-idle): invalid value "lots" from flag '
        '--postgres-conn-max-idle: must be "auto" or a number'
    )
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("pgConnMaxIdle: lots\n")
    line = assert_one_line_failure(run_coderapi("server", "--config", str(yaml_path), env=env))
    assert "pgConnMaxIdle" in line and '"auto" or a number' in line, line
    for good in ("auto", "7"):
        out = run_coderapi("server", "--write-config", f"--postgres-conn-max-idle={good}", env=env)
        assert out.returncode == 0, out.stderr
