"""The coderd wire form (`CODERAPI_WIRE_FORMAT=coderd`): the bytes Coder's own clients decode.

The Go SDK's decoding rules are written down here (`GoSDK`): serpent's URL, HostPort and Regexp decode
only from a JSON string, `Struct[T]` only from the bare T, StringArray from an array or null; the
dashboard reads `{"safe": [...]}` and `connection_latency_ms.P50` / `P95`. Every coderd-form body is
decoded with them, for an unconfigured and a richly configured server. The `config` object is compared
with coderd's field tree (`tests/data/deployment_options.json`: key path, omitempty, the value when
defaulted) for every option, unset and set.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask

from coderapi.config import load
from coderapi.config.options import CODERD_KEYS, CONFIG_FIELDS, OPTIONS
from coderapi.config.settings import Settings, SettingsError
from coderapi.config.wire import config_object
from coderapi.database import Store
from coderapi.openapi import build_spec
from coderapi.runtime import EXTENSION_KEY, Runtime
from coderapi.services.statscache import DeploymentStatsSnapshot
from coderapi.testing import child_env
from tests.conftest import MakeApp
from tests.contract import OPTIONS_DATA

CODERD = pytest.mark.wire_format("coderd")
Auth = Callable[[str], dict[str, str]]

EXTERNAL_AUTH_ENV = {
    "CODER_EXTERNAL_AUTH_0_ID": "github",
    "CODER_EXTERNAL_AUTH_0_TYPE": "github",
    "CODER_EXTERNAL_AUTH_0_CLIENT_ID": "client-id-1",
    "CODER_EXTERNAL_AUTH_0_CLIENT_SECRET": "sentinel-client-secret-0451",
    "CODER_EXTERNAL_AUTH_0_EXTRA_TOKEN_KEYS": "sentinel-extra-key-0452",
    "CODER_EXTERNAL_AUTH_0_SCOPES": "repo read:org",
}
ACCEPTANCE_ENV = {
    "CODER_ACCESS_URL": "https://coder.example.com",
    "CODER_OIDC_GROUP_REGEX_FILTER": "^eng-.*",
    **EXTERNAL_AUTH_ENV,
}
# A server with much configured: every kind of value set to something non-zero, secrets included.
RICH_ENV = {
    **ACCEPTANCE_ENV,
    "CODER_VERBOSE": "true",
    "CODER_WILDCARD_ACCESS_URL": "*.apps.example.com",
    "CODER_PROMETHEUS_ADDRESS": "[::1]:2113",
    "CODER_TLS_ADDRESS": "0.0.0.0:8443",
    "CODER_DERP_SERVER_RELAY_URL": "https://relay:pw@derp.example.com/",
    "CODER_NOTIFICATIONS_WEBHOOK_ENDPOINT": "https://hooks.example.com/coder",
    "CODER_OIDC_ICON_URL": "https://idp.example.com/icon.png",
    "CODER_OIDC_GROUP_MAPPING": '{"eng": "engineering"}',
    "CODER_OIDC_USER_ROLE_MAPPING": '{"admins": ["owner", "auditor"]}',
    "CODER_SUPPORT_LINKS": '[{"name": "Docs", "target": "https://docs.example.com", "icon": "book"}]',
    "CODER_PROXY_TRUSTED_HEADERS": "X-Forwarded-For",
    "CODER_EXPERIMENTS": "web-push",
    "CODER_OIDC_CLIENT_SECRET": "sentinel-oidc-secret-0453",
    "CODER_SSH_CONFIG_OPTIONS": "ForwardAgent yes",
    "CODER_DEPLOYMENT_NAME": "acme",
    "CODER_CLI_UPGRADE_MESSAGE": "upgrade <now> & then",
}
SENTINELS = ("sentinel-client-secret-0451", "sentinel-extra-key-0452", "sentinel-oidc-secret-0453", "relay:pw")


# ---------------------------------------------------------------------------------------------------
# The Go SDK's (and the dashboard's) decoding rules.


class DecodeError(AssertionError):
    """The body would not decode in Coder's client."""


def expect(ok: bool, where: str, value: Any) -> None:
    if not ok:
        raise DecodeError(f"{where}: cannot decode {json.dumps(value)[:200]}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def strings_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def decode_value(value_type: str, value: Any, where: str) -> None:
    """One serpent value as codersdk decodes it (`serpent.<Type>.UnmarshalJSON` or Go's own rules)."""
    if value_type in ("String", "Enum", "YAMLConfigPath", "URL", "HostPort", "Regexp"):
        # URL, HostPort and Regexp unmarshal a JSON string and parse it; anything else is an error.
        expect(isinstance(value, str), where, value)
    elif value_type == "Bool":
        expect(isinstance(value, bool), where, value)
    elif value_type in ("Int64", "Duration"):
        expect(is_int(value), where, value)
    elif value_type == "StringArray":
        expect(strings_or_null(value), where, value)
    elif value_type.startswith("Struct[[]"):
        # Struct[T] unmarshals the bare T: a slice of objects (or null), never {"value": ...}.
        expect(value is None or (isinstance(value, list) and all(isinstance(v, dict) for v in value)), where, value)
        for item in value or ():
            for key, field in item.items():
                expect(isinstance(field, str | bool) or strings_or_null(field), f"{where}[].{key}", field)
    elif value_type.startswith("Struct[map"):
        expect(value is None or isinstance(value, dict), where, value)
    else:
        raise AssertionError(f"unknown value type {value_type}")


FIELD_TYPES: dict[str, str] = {o["config_path"]: o["value_type"] for o in OPTIONS_DATA}
FIELD_TYPES["telemetry.trace"] = "Bool"
TYPE_BY_NAME: dict[str, str] = {o["name"]: o["value_type"] for o in OPTIONS_DATA}


def decode_config(config: Any) -> None:
    expect(isinstance(config, dict), "config", config)
    for path, value_type in FIELD_TYPES.items():
        node: Any = config
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
            expect(isinstance(node, dict), f"config.{path}", node)
        if leaf in node:  # absent keys keep Go's zero value
            decode_value(value_type, node[leaf], f"config.{path}")


def decode_group(group: Any, where: str) -> None:
    expect(isinstance(group, dict), where, group)
    for key in ("name", "yaml", "description"):
        if key in group:
            expect(isinstance(group[key], str), f"{where}.{key}", group[key])
    if "parent" in group:
        decode_group(group["parent"], f"{where}.parent")


def decode_option(option: Any, where: str) -> None:
    expect(isinstance(option, dict) and isinstance(option.get("name"), str), where, option)
    for key in ("description", "flag", "flag_shorthand", "env", "yaml", "default", "value_source"):
        if key in option:
            expect(isinstance(option[key], str), f"{where}.{key}", option[key])
    for key in ("required", "hidden"):
        if key in option:
            expect(isinstance(option[key], bool), f"{where}.{key}", option[key])
    annotations = option.get("annotations", {})
    expect(isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values()), where, annotations)
    if "group" in option:
        decode_group(option["group"], f"{where}.group")
    if "value" in option:
        decode_value(TYPE_BY_NAME[option["name"]], option["value"], f"{where}.value")
    for i, copy in enumerate(option.get("use_instead", [])):
        decode_option(copy, f"{where}.use_instead[{i}]")


def decode_deployment_config(body: Any) -> None:
    expect(isinstance(body, dict), "DeploymentConfig", body)
    decode_config(body["config"])
    for i, option in enumerate(body["options"]):
        decode_option(option, f"options[{i}]")


def decode_strings(body: Any, where: str) -> None:
    expect(isinstance(body, dict), where, body)
    for key, value in body.items():
        expect(isinstance(value, str | bool), f"{where}.{key}", value)


def decode_safe_experiments(body: Any) -> None:
    # codersdk.AvailableExperiments, and the dashboard's `experiments.safe`.
    expect(isinstance(body, dict) and strings_or_null(body.get("safe")), "AvailableExperiments", body)


def decode_stats(body: Any) -> None:
    latency = body["workspaces"]["connection_latency_ms"]
    # The dashboard's banner reads these exact keys (JavaScript is case-sensitive).
    for key in ("P50", "P95"):
        expect(is_int(latency.get(key)) or isinstance(latency.get(key), float), f"connection_latency_ms.{key}", latency)
    for key in ("aggregated_from", "collected_at", "next_update_at"):
        expect(isinstance(body[key], str), key, body[key])


def get_json(app: Flask, path: str, token: str = "", method: str = "GET", **kwargs: Any) -> tuple[int, Any]:
    headers = {"Coder-Session-Token": token} if token else {}
    resp = app.test_client().open(path, method=method, headers=headers, **kwargs)
    return resp.status_code, json.loads(resp.data)


def ready_stats(app: Flask, store: Store) -> None:
    rt: Runtime = app.extensions[EXTENSION_KEY]
    cache = rt.stats
    cache.stop()
    cache.tick()  # the first refresh, now (the loop would do it in the background)
    assert isinstance(cache.latest(), DeploymentStatsSnapshot)


@CODERD
@pytest.mark.parametrize("env", [{}, RICH_ENV], ids=["unconfigured", "configured"])
def test_every_body_decodes_with_the_go_sdk_rules(
    make_app: MakeApp, store: Store, owner_token: str, member_token: str, env: Mapping[str, str]
) -> None:
    app = make_app(env=env)
    ready_stats(app, store)
    status, body = get_json(app, "/api/v2/deployment/config", owner_token)
    assert status == 200
    decode_deployment_config(body)
    text = json.dumps(body)
    assert not any(s in text for s in SENTINELS)
    decode: Callable[[Any], None]
    for path, decode in (
        ("/api/v2/buildinfo", lambda b: decode_strings(b, "BuildInfoResponse")),
        ("/api/v2/updatecheck", lambda b: decode_strings(b, "UpdateCheckResponse")),
        ("/api/v2/experiments/available", decode_safe_experiments),
        ("/api/v2/deployment/stats", decode_stats),
    ):
        status, body = get_json(app, path, owner_token)
        assert status == 200, path
        decode(body)
    status, body = get_json(app, "/api/v2/experiments", member_token)
    assert status == 200 and strings_or_null(body)
    status, body = get_json(app, "/api/v2/deployment/ssh", member_token)
    assert status == 200 and isinstance(body["ssh_config_options"], dict)
    status, body = get_json(app, "/api/v2/users/me/keys/tokens/tokenconfig", member_token)
    assert status == 200 and is_int(body["max_token_lifetime"])


@pytest.mark.parametrize("env", [{}, RICH_ENV], ids=["unconfigured", "configured"])
@pytest.mark.wire_format("reference")
def test_the_reference_form_does_not_decode_with_the_go_sdk_rules(
    make_app: MakeApp, owner_token: str, env: Mapping[str, str]
) -> None:
    """The decoder above can fail: the seed's shapes are what broke Coder's clients."""
    app = make_app(env=env)
    body = get_json(app, "/api/v2/deployment/config", owner_token)[1]
    with pytest.raises(DecodeError):
        decode_deployment_config(body)
    with pytest.raises(DecodeError):
        decode_safe_experiments(get_json(app, "/api/v2/experiments/available", owner_token)[1])


@CODERD
def test_acceptance(make_app: MakeApp, owner_token: str) -> None:
    app = make_app(env=ACCEPTANCE_ENV)
    status, body = get_json(app, "/api/v2/deployment/config", owner_token)
    assert status == 200
    config, options = body["config"], {o["name"]: o for o in body["options"]}
    urls = [o for o in OPTIONS_DATA if o["value_type"] == "URL"]
    host_ports = [o for o in OPTIONS_DATA if o["value_type"] == "HostPort"]
    assert (len(urls), len(host_ports)) == (7, 4)
    for data in urls + host_ports:
        value = leaf(config, data["config_path"])
        assert isinstance(value, str), data["config_path"]
        assert options[data["name"]]["value"] == value, data["name"]
    assert config["access_url"] == "https://coder.example.com"
    assert config["address"] == ""
    assert config["prometheus"]["address"] == "127.0.0.1:2112"
    assert config["docs_url"].startswith("https://coder.com/docs")
    providers = config["external_auth"]
    assert isinstance(providers, list) and len(providers) == 1
    assert providers[0]["id"] == "github" and providers[0]["scopes"] == ["repo", "read:org"]
    assert "client_secret" not in providers[0] and "extra_token_keys" not in providers[0]
    assert options["External Auth Providers"]["value"] == providers
    assert config["oidc"]["group_regex_filter"] == "^eng-.*"
    assert options["OIDC Regex Group Filter"]["value"] == "^eng-.*"
    assert "verbose" not in config
    assert config["config_ssh"] == {"DeploymentName": "coder.", "SSHConfigOptions": None}
    assert options["Access URL"]["value_source"] == "env"
    assert "value_source" not in options["Wildcard Access URL"]
    assert "sentinel" not in json.dumps(body)


@CODERD
def test_experiments_available_is_an_object(client: Any, member_token: str) -> None:
    resp = client.get("/api/v2/experiments/available", headers={"Coder-Session-Token": member_token})
    assert resp.status_code == 200
    assert resp.data == b'{"safe":[]}\n'


@CODERD
def test_csp_reports_are_public(client: Any) -> None:
    report = {"csp-report": {"document-uri": "https://coder.example.com/", "violated-directive": "img-src"}}
    resp = client.post("/api/v2/csp/reports", json=report)
    assert resp.status_code == 200
    assert resp.data == b'"ok"\n'
    # The rest of the token routes still want a token.
    assert client.get("/api/v2/deployment/ssh").status_code == 401


@pytest.mark.wire_format("reference")
def test_csp_reports_want_a_token_in_the_reference_form(client: Any) -> None:
    assert client.post("/api/v2/csp/reports", json={}).status_code == 401


@CODERD
def test_stats_latency_keys(make_app: MakeApp, store: Store, owner_token: str) -> None:
    app = make_app()
    ready_stats(app, store)
    status, body = get_json(app, "/api/v2/deployment/stats", owner_token)
    assert status == 200
    assert list(body["workspaces"]["connection_latency_ms"]) == ["P50", "P95"]


@CODERD
def test_support_links_leave_out_an_empty_location(make_app: MakeApp, owner_token: str) -> None:
    links = (
        '[{"name": "a", "target": "https://a.example", "icon": "x"},'
        ' {"name": "b", "target": "t", "icon": "", "location": "navbar"}]'
    )
    app = make_app(env={"CODER_SUPPORT_LINKS": links})
    config = get_json(app, "/api/v2/deployment/config", owner_token)[1]["config"]
    assert config["support"]["links"] == [
        {"name": "a", "target": "https://a.example", "icon": "x"},
        {"name": "b", "target": "t", "icon": "", "location": "navbar"},
    ]


# ---------------------------------------------------------------------------------------------------
# The field tree, for every option, unset and set.


def leaf(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for key in path.split("."):
        node = node[key]
    return node


def has_leaf(config: Mapping[str, Any], path: str) -> bool:
    node: Any = config
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def leaf_paths(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in node.items():
        if isinstance(value, dict) and prefix + key not in MAP_FIELDS:
            out.extend(leaf_paths(value, f"{prefix}{key}."))
        else:
            out.append(prefix + key)
    return out


MAP_FIELDS = {o["config_path"] for o in OPTIONS_DATA if o["value_type"].startswith("Struct[map")}
SECRET_FIELDS = {o["config_path"] for o in OPTIONS_DATA if "secret" in o["annotations"]}
# Defaults that depend on the build or the machine (deployment-config.md §3), and what the server
# changes after parsing: checked by type only.
RUNTIME_DEPENDENT = {o["config_path"] for o in OPTIONS_DATA if o.get("default_runtime_dependent")}
ZERO = (False, "", 0, None)


def coderd_paths() -> list[str]:
    return [CODERD_KEYS.get(path, path) for path in CONFIG_FIELDS]


def test_the_field_tree_is_the_contracts() -> None:
    """Every option's `config_path` (coderd's spelling) is a field, in Go order, with nothing else."""
    assert sorted({o["config_path"] for o in OPTIONS_DATA} | {"telemetry.trace"}) == sorted(coderd_paths())


def test_unset_config_is_coderds(make_values: Callable[..., Any]) -> None:
    config = config_object(make_values(), coderd=True)
    expected_paths = []
    for path in coderd_paths():
        data = next((o for o in OPTIONS_DATA if o["config_path"] == path), None)
        value = False if data is None else data["config_value_if_defaulted"]
        if path in SECRET_FIELDS:
            value = [] if data is not None and data["value_type"] == "StringArray" else ""
            value = None if value == [] else value
        if data is not None and data["config_key_omitted_when_zero"] and value in ZERO:
            assert not has_leaf(config, path), path
            continue
        expected_paths.append(path)
        if path in RUNTIME_DEPENDENT:
            decode_value(data["value_type"], leaf(config, path), path)  # type: ignore[index]
        else:
            assert leaf(config, path) == value, path
    assert leaf_paths(config) == expected_paths


# A non-zero value for every option, as env text (or a flag for the two without env), and the JSON
# coderd writes for it.
SET_OVERRIDES: dict[str, tuple[str, Any]] = {
    "Wildcard Access URL": ("*.apps.example.com", "*.apps.example.com"),
    "Prometheus Aggregate Agent Stats By": ("username", ["username"]),
    "Provisioner Daemon Types": ("echo", ["echo"]),
    "Postgres Connection Max Open": ("7", 7),
    "Postgres Auth": ("awsiamrds", "awsiamrds"),
    "SameSite Auth Cookie": ("none", "none"),
    "SSH Config Options": ("ForwardAgent yes", ["ForwardAgent yes"]),
    "Workspace Hostname Suffix": ("coder", "coder"),
    "Config Path": ("", ""),  # a YAML file of its own is not this test's subject
    "Write Config": ("", ""),
    "Address": ("127.0.0.1:9001", "127.0.0.1:9001"),
    "Postgres Connection URL": ("postgres://coder:sentinel-pw@db.example.com:5432/coder", ""),
    "Postgres Connection Max Idle": ("3", "3"),
    "OIDC Organization Sync Mapping": (
        '{"org": ["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]}',
        {"org": ["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]},
    ),
    "OIDC User Role Mapping": ('{"g": ["owner"]}', {"g": ["owner"]}),
    "Support Links": (
        '[{"name": "n", "target": "t", "icon": "i"}]',
        [{"name": "n", "target": "t", "icon": "i"}],
    ),
}
BY_TYPE: dict[str, tuple[str, Any]] = {
    "String": ("text-1", "text-1"),
    "Bool": ("true", True),
    "Int64": ("7", 7),
    "Duration": ("1s", 10**9),
    "StringArray": ("a,b", ["a", "b"]),
    "URL": ("https://x.example.com/p?q=1", "https://x.example.com/p?q=1"),
    "HostPort": ("127.0.0.1:9000", "127.0.0.1:9000"),
    "Regexp": ("^a+$", "^a+$"),
    "Struct[map[string]string]": ('{"k": "v"}', {"k": "v"}),
}
SET_SKIP = {"Config Path", "Write Config", "External Auth Providers"}  # tested by test_acceptance
# Fields the server rewrites after parsing (deployment-config.md §6) or that two options share.
SET_REWRITTEN = {"http_address", "tls.address", "rate_limit.api", "oidc.groups_field", "telemetry.enable"}


def set_values() -> tuple[dict[str, str], dict[str, Any]]:
    env: dict[str, str] = {}
    expected: dict[str, Any] = {}
    for data in OPTIONS_DATA:
        if data["name"] in SET_SKIP or not data["env"]:
            continue
        text, value = SET_OVERRIDES.get(data["name"]) or BY_TYPE[data["value_type"]]
        env[data["env"]] = text
        expected[data["config_path"]] = value
    return env, expected


def test_set_config_is_coderds(make_values: Callable[..., Any]) -> None:
    env, expected = set_values()
    config = config_object(make_values((), env), coderd=True)
    omitted = {o["config_path"] for o in OPTIONS_DATA if o["config_key_omitted_when_zero"]}
    for path, value in expected.items():
        if path in SECRET_FIELDS:
            blank = None if isinstance(value, list) else ""
            assert has_leaf(config, path) == (path not in omitted), path
            if path not in omitted:
                assert leaf(config, path) == blank, path
        elif path not in SET_REWRITTEN:
            assert leaf(config, path) == value, path
    present = leaf_paths(config)
    assert present == [p for p in coderd_paths() if has_leaf(config, p)]
    # Everything set and not secret is present (omitempty drops only zero values).
    assert {p for p in expected if p not in SECRET_FIELDS} <= set(present)


def test_every_option_is_set_by_that_test() -> None:
    env, _ = set_values()
    assert len(env) == len([o for o in OPTIONS if o.env and o.name not in SET_SKIP])


# ---------------------------------------------------------------------------------------------------
# The setting, the OpenAPI document, dashboard_url, the update check without a feed.


def test_wire_format_setting(tmp_path: Any) -> None:
    assert Settings.from_environ({"CODERAPI_DATA_DIR": str(tmp_path)}).wire_format == "reference"
    assert Settings.from_environ({"CODERAPI_WIRE_FORMAT": "coderd"}).wire_format == "coderd"
    with pytest.raises(SettingsError, match=r"^CODERAPI_WIRE_FORMAT: 'Coderd' is not one of reference, coderd$"):
        Settings.from_environ({"CODERAPI_WIRE_FORMAT": "Coderd"})


def test_a_bad_wire_format_stops_the_server_with_one_line(tmp_path: Any) -> None:
    exe = str(__import__("pathlib").Path(sys.executable).parent / "coderapi")
    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path), "CODERAPI_WIRE_FORMAT": "json"})
    done = subprocess.run([exe, "server"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["error: CODERAPI_WIRE_FORMAT: 'json' is not one of reference, coderd"]


def test_the_wire_format_is_not_an_option() -> None:
    assert not any("WIRE" in (o.env or "") for o in OPTIONS)


def test_openapi_describes_each_form() -> None:
    ref = build_spec("v1", (), "reference")
    coderd = build_spec("v1", (), "coderd")
    assert "security" in ref["paths"]["/csp/reports"]["post"]
    assert "security" not in coderd["paths"]["/csp/reports"]["post"]
    assert ref["paths"]["/experiments/available"]["get"]["responses"]["200"]["schema"]["type"] == "array"
    assert coderd["definitions"]["codersdk.AvailableExperiments"]["properties"]["safe"]["type"] == "array"
    assert set(coderd["definitions"]["codersdk.WorkspaceConnectionLatencyMS"]["properties"]) == {"P50", "P95"}
    values = coderd["definitions"]["codersdk.DeploymentValues"]["properties"]
    assert values["access_url"] == {"type": "string"}
    assert set(values["config_ssh"]["properties"]) == {"DeploymentName", "SSHConfigOptions"}
    assert values["external_auth"]["type"] == "array"


@pytest.mark.parametrize(
    ("env", "dashboard"),
    [
        ({}, "http://127.0.0.1:3000"),
        ({"CODER_HTTP_ADDRESS": ":8080"}, "http://0.0.0.0:8080"),
        ({"CODER_HTTP_ADDRESS": "[::1]:8080"}, "http://[::1]:8080"),
        ({"CODER_TLS_ENABLE": "true", "CODER_TLS_ADDRESS": "10.0.0.1:443"}, "https://10.0.0.1:443"),
        ({"CODER_ACCESS_URL": "https://coder.example.com"}, "https://coder.example.com"),
    ],
)
def test_dashboard_url_is_always_absolute(make_app: MakeApp, env: Mapping[str, str], dashboard: str) -> None:
    app = make_app(env=env)
    status, body = get_json(app, "/api/v2/buildinfo")
    assert status == 200 and body["dashboard_url"] == dashboard


def test_source_url_derives_the_links(make_app: MakeApp, settings: Settings) -> None:
    source = "https://github.com/example/coderapi-fork"
    derived = replace(settings, source_url=source, git_commit="0123456789abcdef0123456789abcdef01234567")
    assert derived.release_feed_url == "https://api.github.com/repos/example/coderapi-fork/releases/latest"
    body = get_json(make_app(settings=derived), "/api/v2/buildinfo")[1]
    assert body["external_url"] == source + "/commit/0123456789abcdef0123456789abcdef01234567"
    assert replace(settings, source_url="https://git.example.com/x/y").release_feed_url == ""
    assert replace(settings, update_check_url="http://127.0.0.1:1/feed").release_feed_url == "http://127.0.0.1:1/feed"
    with pytest.raises(SettingsError, match=r"^CODERAPI_SOURCE_URL: "):
        Settings.from_environ({"CODERAPI_SOURCE_URL": "github.com/x/y"})


def test_no_feed_means_current_and_no_error(make_app: MakeApp, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(env={"CODER_UPDATE_CHECK": "true"})
    rt: Runtime = app.extensions[EXTENSION_KEY]
    assert rt.update_checker is None
    status, body = get_json(app, "/api/v2/updatecheck")
    assert status == 200 and body == {"current": True, "version": rt.build.version, "url": ""}
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.slow
def test_a_first_start_without_network_prints_no_error(start_server: Any) -> None:
    server = start_server(env={"CODER_UPDATE_CHECK": "true"})
    status = get_status(server.url + "/api/v2/updatecheck")
    assert status == 200
    out = server.output()
    assert "[error]" not in out
    assert out.count("no release feed is known") == 1


def get_status(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status)


def test_load_is_unchanged_by_the_form() -> None:
    values = load((), {})
    assert values.deployment_config("reference") is values.deployment_config("reference")
    assert values.deployment_config("coderd") != values.deployment_config("reference")


@pytest.mark.slow
def test_a_live_coderd_form_server_decodes(tmp_path: Any) -> None:
    """The same rules against real gunicorn workers started with `CODERAPI_WIRE_FORMAT=coderd`."""
    from tests.conftest import live_server

    env = {"CODERAPI_WIRE_FORMAT": "coderd", **ACCEPTANCE_ENV}
    with live_server(tmp_path / "coderd", env=env) as live:
        token = {"Coder-Session-Token": live.owner_token}
        status, _headers, body = live.request("GET", "/api/v2/deployment/config", token)
        assert status == 200
        decode_deployment_config(json.loads(body))
        assert b"sentinel" not in body
        status, _headers, body = live.request("GET", "/api/v2/experiments/available", token)
        assert (status, body) == (200, b'{"safe":[]}\n')
        status, _headers, body = live.request("POST", "/api/v2/csp/reports", {}, b"{}")
        assert (status, body) == (200, b'"ok"\n')
