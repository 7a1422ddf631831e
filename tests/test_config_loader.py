"""Loading: flag > env > YAML > default, value sources, shared fields, errors, server-side changes."""

from __future__ import annotations

import logging
import pathlib

import pytest

from coderapi.config import ConfigError, DeploymentValues, load
from coderapi.config.experiments import read_experiments
from coderapi.config.loader import external_auth_from_env
from coderapi.config.options import OPTIONS, OPTIONS_BY_FIELD
from coderapi.testing import child_env

H = 3600 * 1_000_000_000


def write_yaml(tmp_path: pathlib.Path, text: str) -> str:
    path = tmp_path / "coder.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_without_any_input() -> None:
    values = load((), {})
    assert values.source("Access URL") == ""
    assert str(values.get("access_url")) == ""
    assert values.source("HTTP Address") == "default"
    assert values.get("http_address") == "127.0.0.1:3000"
    assert values.get("session_lifetime.max_token_lifetime") == 876600 * H
    assert values.get("retention.api_keys") == 7 * 24 * H
    assert values.get("ai.bridge.retention") == 60 * 24 * H
    assert values.get("rate_limit.api") == 512
    assert values.get("telemetry.enable") is True
    assert values.get("update_check") is True
    assert values.get("oidc.scopes") == ["openid", "profile", "email"]
    assert values.get("oidc.auth_url_params") == {"access_type": "offline"}
    assert values.get("oidc.group_regex_filter") == ".*"
    assert str(values.get("docs_url")) == "https://coder.com/docs/@v2.29.0"
    assert str(values.get("tls.address")) == "127.0.0.1:3443"
    assert values.get("pg_auth") == "password"
    assert values.experiments == []


def test_every_option_has_a_source_and_a_value() -> None:
    values = load((), {})
    for opt in OPTIONS:
        assert values.source(opt.name) in ("default", "")
        values.get(opt.field)
    assert sum(values.source(o.name) == "default" for o in OPTIONS) > 100


def test_precedence_flag_env_yaml_default(tmp_path: pathlib.Path) -> None:
    path = write_yaml(
        tmp_path,
        "networking:\n  http:\n    maxTokenLifetime: 48h0m0s\n    sessionDuration: 2h\n"
        "  accessURL: https://yaml.example.com\npgConnMaxOpen: 7\n",
    )
    env = {
        "CODER_CONFIG_PATH": path,
        "CODER_ACCESS_URL": "https://env.example.com",
        "CODER_SESSION_DURATION": "3h",
        "CODER_PG_CONN_MAX_OPEN": "8",
    }
    values = load(["--postgres-conn-max-open", "9"], env)
    assert str(values.get("access_url")) == "https://env.example.com"
    assert values.source("Access URL") == "env"
    assert values.get("session_lifetime.default_duration") == 3 * H
    assert values.get("session_lifetime.max_token_lifetime") == 48 * H
    assert values.source("Max Token Lifetime") == "yaml"
    assert values.get("pg_conn_max_open") == 9
    assert values.source("Postgres Connection Max Open") == "flag"
    assert values.source("Config Path") == "env"
    assert values.get("config") == path


def test_acceptance_sources(tmp_path: pathlib.Path) -> None:
    path = write_yaml(tmp_path, "networking:\n  http:\n    maxTokenLifetime: 48h0m0s\n")
    values = load(
        ["--experiments", "foo,BAR"],
        {"CODER_ACCESS_URL": "https://coder.example.com", "CODER_CONFIG_PATH": path},
    )
    assert values.source("Access URL") == "env"
    assert values.source("Max Token Lifetime") == "yaml"
    assert values.source("Experiments") == "flag"
    assert values.get("experiments") == ["foo", "BAR"]
    assert values.experiments == ["foo", "bar"]
    assert values.get("access_url").host == "coder.example.com"


def test_empty_env_is_ignored_and_names_are_case_insensitive() -> None:
    values = load((), {"CODER_HTTP_ADDRESS": "", "coder_access_url": "https://lower.example.com"})
    assert values.get("http_address") == "127.0.0.1:3000"
    assert values.source("HTTP Address") == "default"
    assert str(values.get("access_url")) == "https://lower.example.com"


def test_homebrew_fallback() -> None:
    values = load((), {"HOMEBREW_CODER_ACCESS_URL": "https://brew.example.com"})
    assert str(values.get("access_url")) == "https://brew.example.com"
    assert values.source("Access URL") == "env"
    values = load((), {"CODER_ACCESS_URL": "https://a.example.com", "HOMEBREW_CODER_ACCESS_URL": "https://b"})
    assert str(values.get("access_url")) == "https://a.example.com"


@pytest.mark.parametrize(
    ("argv", "field", "want"),
    [
        (["--verbose"], "verbose", True),
        (["-v"], "verbose", True),
        (["--verbose=false"], "verbose", False),
        (["--http-address=0.0.0.0:80"], "http_address", "0.0.0.0:80"),
        (["--http-address", "0.0.0.0:81"], "http_address", "0.0.0.0:81"),
        (["--http-address="], "http_address", ""),
        (["-l", "a,b"], "logging.log_filter", ["a", "b"]),
        (["-la"], "logging.log_filter", ["a"]),
        (["-l=x"], "logging.log_filter", ["x"]),
        (["-vl", "y"], "logging.log_filter", ["y"]),
        (["--experiments", "a", "--experiments", "b,c"], "experiments", ["a", "b", "c"]),
    ],
)
def test_flag_forms(argv: list[str], field: str, want: object) -> None:
    assert load(argv, {}).get(field) == want


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nope"], "unknown flag: --nope"),
        (["-z"], 'unknown shorthand flag: "z"'),
        (["--access-url"], "flag needs an argument: --access-url"),
        (["-a"], "flag needs an argument: -a"),
        (["serve"], 'unexpected argument "serve"'),
        (["--", "x"], 'unexpected argument "x"'),
    ],
)
def test_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(argv, {})


def test_env_and_flag_arrays_append() -> None:
    values = load(["--experiments", "b"], {"CODER_EXPERIMENTS": "a"})
    assert values.get("experiments") == ["a", "b"]
    assert values.source("Experiments") == "flag"


def test_invalid_env_duration_names_option_source_and_value() -> None:
    with pytest.raises(ConfigError) as info:
        load((), {"CODER_MAX_TOKEN_LIFETIME": "notaduration"})
    message = str(info.value)
    assert "\n" not in message
    assert "Max Token Lifetime" in message and "--max-token-lifetime" in message
    assert "env CODER_MAX_TOKEN_LIFETIME" in message
    assert '"notaduration"' in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("argv", "env", "where"),
    [
        (["--tls-address", "nope"], {}, "flag --tls-address"),
        ([], {"CODER_PROMETHEUS_ADDRESS": ""}, None),
        ([], {"CODER_TLS_ENABLE": "maybe"}, "env CODER_TLS_ENABLE"),
        ([], {"CODER_DERP_SERVER_REGION_ID": "1.5"}, "env CODER_DERP_SERVER_REGION_ID"),
        ([], {"CODER_PG_AUTH": "md5"}, "env CODER_PG_AUTH"),
        ([], {"CODER_OIDC_GROUP_REGEX_FILTER": "(x"}, "env CODER_OIDC_GROUP_REGEX_FILTER"),
        ([], {"CODER_OIDC_AUTH_URL_PARAMS": "[1"}, "env CODER_OIDC_AUTH_URL_PARAMS"),
        ([], {"CODER_ACCESS_URL": "http://bad host/"}, "env CODER_ACCESS_URL"),
        ([], {"CODER_EXPERIMENTS": 'a"b'}, "env CODER_EXPERIMENTS"),
        ([], {"CODER_WILDCARD_ACCESS_URL": "example.com"}, "env CODER_WILDCARD_ACCESS_URL"),
        ([], {"CODER_PG_CONN_MAX_OPEN": "0"}, "env CODER_PG_CONN_MAX_OPEN"),
        ([], {"CODER_PROVISIONER_TYPES": "docker"}, "env CODER_PROVISIONER_TYPES"),
        (
            [],
            {"CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY": "agent_id"},
            "env CODER_PROMETHEUS_AGGREGATE_AGENT_STATS_BY",
        ),
    ],
)
def test_invalid_input_is_a_config_error(argv: list[str], env: dict[str, str], where: str | None) -> None:
    if where is None:  # an empty env value is ignored, so the default stays
        load(argv, env)
        return
    with pytest.raises(ConfigError, match=where):
        load(argv, env)


def test_secret_values_are_never_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load((), {"CODER_EXTERNAL_TOKEN_ENCRYPTION_KEYS": 'sentinel"oops'})
    assert "sentinel" not in str(info.value)
    assert "<redacted>" in str(info.value)


def test_yaml_values_of_every_shape(tmp_path: pathlib.Path) -> None:
    path = write_yaml(
        tmp_path,
        """
networking:
  tls:
    enable: true
    certFiles: [a.pem, b.pem]
    address: "[::1]:8443"
  derp:
    stunAddresses: []
oidc:
  scopes: openid,groups
  authURLParams:
    prompt: consent
  groupRegexFilter: ^dev
  userRoleMapping:
    admins: [owner, auditor]
pgAuth: AWSIAMRDS
supportLinks:
  - name: Docs
    target: https://docs.example.com
    icon: docs
externalAuthProviders:
  - type: github
    client_id: abc
    client_secret: shh
    no_refresh: true
client:
  sshConfigOptions:
    - ForwardAgent yes
""",
    )
    values = load((), {"CODER_CONFIG_PATH": path})
    assert values.get("tls.enable") is True
    assert values.get("tls.cert_file") == ["a.pem", "b.pem"]
    assert values.get("tls.address").host == "::1"
    assert values.get("derp.server.stun_addresses") == []
    assert values.source("DERP Server STUN Addresses") == "yaml"
    assert values.get("oidc.scopes") == ["openid", "groups"]
    assert values.get("oidc.groups_field") == "groups"  # coder server's rule for the "groups" scope
    assert values.get("oidc.auth_url_params") == {"prompt": "consent"}
    assert values.get("oidc.group_regex_filter") == "^dev"
    assert values.get("oidc.user_role_mapping") == {"admins": ["owner", "auditor"]}
    assert values.get("pg_auth") == "AWSIAMRDS"
    assert values.get("support.links")[0]["name"] == "Docs"
    assert values.get("external_auth")[0]["client_secret"] == "shh"
    assert values.get("config_ssh.sshconfigOptions") == ["ForwardAgent yes"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("networking:\n  nope: 1\n", 'unknown option "networking.nope"'),
        ("bogus: true\n", 'unknown option "bogus"'),
        ("networking:\n  http:\n    maxTokenLifetime: soon\n", "YAML key networking.http.maxTokenLifetime"),
        ("- a\n", "expected a mapping"),
        ("a: [\n", "invalid YAML"),
        ("networking:\n  tls:\n    enable: [1]\n", "expected a YAML scalar"),
    ],
)
def test_yaml_errors(tmp_path: pathlib.Path, text: str, message: str) -> None:
    path = write_yaml(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load((), {"CODER_CONFIG_PATH": path})


def test_yaml_file_missing(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"Config Path \(--config\): cannot read .* from flag -c"):
        load(["-c", str(tmp_path / "missing.yaml")], {})


def test_yaml_never_overrides_flag_or_env(tmp_path: pathlib.Path) -> None:
    path = write_yaml(tmp_path, "networking:\n  accessURL: https://yaml\n  http:\n    httpAddress: 1.1.1.1:1\n")
    values = load(["--config", path, "--http-address", ":9"], {"CODER_ACCESS_URL": "https://env"})
    assert str(values.get("access_url")) == "https://env"
    assert values.get("http_address") == ":9"


def test_empty_yaml_file(tmp_path: pathlib.Path) -> None:
    values = load((), {"CODER_CONFIG_PATH": write_yaml(tmp_path, "# nothing\n")})
    assert values.source("Access URL") == ""


def test_shared_fields_share_the_source() -> None:
    values = load((), {"CODER_NOTIFICATIONS_EMAIL_FROM": "a@example.com", "CODER_TELEMETRY": "false"})
    assert values.get("notifications.email.from") == "a@example.com"
    assert values.source("Email: From Address") == "env"
    assert values.source("Notifications: Email: From Address") == "env"
    assert values.get("telemetry.enable") is False
    assert values.source("Telemetry Enable") == "env"
    assert values.source("Telemetry (backwards compatibility)") == "env"
    values = load((), {})
    assert values.get("notifications.email.hello") == "localhost"
    assert values.source("Notifications: Email: Hello") == "default"
    assert values.source("Email: Hello") == "default"
    assert values.source("Notifications: Email: From Address") == ""
    for field, opts in OPTIONS_BY_FIELD.items():
        assert len({values.source(o.name) for o in opts}) == 1, field


def test_server_changes_after_parsing() -> None:
    values = load(["-a", "0.0.0.0:8080", "--dangerous-disable-rate-limits"], {})
    assert values.get("http_address") == "0.0.0.0:8080"
    assert values.get("rate_limit.api") == -1
    assert values.source("HTTP Address") == "default"
    values = load(["--address", ":8443", "--tls-enable"], {})
    assert str(values.get("tls.address")) == ":8443"
    values = load(["--oidc-group-field", "roles", "--oidc-scopes", "groups"], {})
    assert values.get("oidc.groups_field") == "roles"


def test_runtime_defaults_come_from_the_given_environ() -> None:
    assert load((), {"HOME": "/home/u"}).get("cache_directory") == "/home/u/.cache/coder"
    assert load((), {"XDG_CACHE_HOME": "/x", "HOME": "/home/u"}).get("cache_directory") == "/x/coder"
    assert load((), {"CACHE_DIRECTORY": "/var/cache/coder"}).get("cache_directory") == "/var/cache/coder/coder"
    values = load((), {})
    assert values.get("cache_directory") == "/tmp/coder"
    assert values.default("Cache Directory") == "/tmp/coder"


def test_external_auth_from_env() -> None:
    env = {
        "CODER_EXTERNAL_AUTH_0_ID": "gh",
        "CODER_EXTERNAL_AUTH_0_TYPE": "github",
        "CODER_EXTERNAL_AUTH_0_CLIENT_SECRET": "shh",
        "CODER_EXTERNAL_AUTH_0_SCOPES": "repo workflow",
        "CODER_EXTERNAL_AUTH_0_NO_REFRESH": "true",
        "CODER_EXTERNAL_AUTH_1_ID": "gl",
        "CODER_GITAUTH_0_ID": "legacy",
    }
    providers = external_auth_from_env(env)
    assert [p["id"] for p in providers] == ["gh", "gl", "legacy"]
    assert providers[0]["scopes"] == ["repo", "workflow"] and providers[0]["no_refresh"] is True
    values = load((), env)
    assert [p["id"] for p in values.get("external_auth")] == ["gh", "gl", "legacy"]
    assert values.source("External Auth Providers") == ""
    with pytest.raises(ConfigError, match="skipped"):
        load((), {"CODER_EXTERNAL_AUTH_1_ID": "x"})
    with pytest.raises(ConfigError, match="parse bool"):
        load((), {"CODER_EXTERNAL_AUTH_0_DEVICE_FLOW": "maybe"})


def test_read_experiments(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="coderapi"):
        assert read_experiments(["foo", "BAR", "*", "Web-Push", "foo"]) == ["foo", "bar", "web-push", "foo"]
    messages = [r.getMessage() for r in caplog.records]
    assert "ignoring unknown experiment: experiment=foo" in messages
    assert any("HERE BE DRAGONS" in m and "web-push" in m for m in messages)
    assert read_experiments(["*", "dAnGeR"]) == ["danger"]


def test_ssh_config() -> None:
    values = load(["--ssh-config-options", 'bar=buzz=bazz,test value,"x y=z"', "--ssh-hostname-prefix", ""], {})
    assert values.ssh_config() == {
        "hostname_prefix": "coder.",
        "hostname_suffix": "coder",
        "ssh_config_options": {"bar": "buzz=bazz", "test": "value", "x": "y=z"},
    }
    assert load(["--workspace-hostname-suffix", ""], {}).ssh_config()["hostname_suffix"] == ""


def test_ssh_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"you must omit any leading \. in workspace hostname suffix: \.coder"):
        load((), {"CODER_WORKSPACE_HOSTNAME_SUFFIX": ".coder"})
    with pytest.raises(ConfigError, match='invalid config-ssh option "novalue"') as info:
        load(["--ssh-config-options", "a b,novalue"], {})
    assert 'parse ssh config options "a b,novalue"' in str(info.value)
    assert "from flag --ssh-config-options" in str(info.value)


def test_get_is_a_dict_lookup() -> None:
    values = load((), {})
    assert isinstance(values, DeploymentValues)
    assert values.get("config_ssh.deploymentName") == "coder."
    with pytest.raises(KeyError):
        values.get("no.such.field")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('networking:\n  accessURL: "https://u:hunter2@x\n', "line 3, column 1"),
        ("networking:\n  accessURL: https://u:hunter2: x\n", "line 2, column 31"),
        ("networking:\n  accessURL: *hunter2\n", "line 2, column 14"),
        ("networking:\n\t- hunter2\n", "line 2, column 1"),
    ],
)
def test_yaml_syntax_errors_name_the_place_not_the_text(tmp_path: pathlib.Path, text: str, where: str) -> None:
    path = write_yaml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load((), {"CODER_CONFIG_PATH": path})
    message = str(caught.value)
    assert "hunter2" not in message and "accessURL" not in message, message
    assert message.startswith(f'YAML file "{path}" from env CODER_CONFIG_PATH: invalid YAML'), message
    assert message.endswith(where), message
    assert "\n" not in message


@pytest.mark.slow
def test_a_yaml_syntax_error_is_one_line_from_the_server(tmp_path: pathlib.Path) -> None:
    import subprocess
    import sys

    path = write_yaml(tmp_path, 'networking:\n  accessURL: "https://u:hunter2@x\n')
    exe = str(pathlib.Path(sys.executable).parent / "coderapi")
    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "data"), "CODER_CONFIG_PATH": path})
    done = subprocess.run([exe, "server"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr
