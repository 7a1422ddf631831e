"""GET /api/v2/deployment/config: the seed's shapes, value sources, RBAC, and secrets that never leave."""

from __future__ import annotations

import json
import logging
import pathlib
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from flask import Flask

from coderapi.config import load, write_config_yaml
from coderapi.config.options import CONFIG_FIELDS, OPTIONS, OPTIONS_BY_FIELD
from tests.conftest import MakeApp
from tests.contract import definition_schema

PATH = "/api/v2/deployment/config"
Auth = Callable[[str], dict[str, str]]

OPTION_KEYS = [
    "name",
    "description",
    "required",
    "flag",
    "flag_shorthand",
    "env",
    "yaml",
    "default",
    "value",
    "annotations",
    "group",
    "use_instead",
    "hidden",
    "value_source",
]


def validate(body: Any, definition: str = "codersdk.DeploymentConfig") -> None:
    schema = definition_schema(definition)
    jsonschema.Draft4Validator(schema).validate(body)


def get_config(app: Flask, token: str, auth: Auth) -> dict[str, Any]:
    resp = app.test_client().get(PATH, headers=auth(token))
    assert resp.status_code == 200, resp.data
    assert resp.content_type == "application/json; charset=utf-8"
    return resp.get_json()  # type: ignore[no-any-return]


def leaf_paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in node.items():
        path = prefix + key
        # Struct, URL, HostPort and Regexp values are objects too; they are leaves here.
        if isinstance(value, dict) and path in CONFIG_FIELDS:
            out.append(path)
        elif isinstance(value, dict):
            out.extend(leaf_paths(value, path + "."))
        else:
            out.append(path)
    return out


@pytest.mark.wire_format("reference")
def test_acceptance(make_app: MakeApp, owner_token: str, auth: Auth, tmp_path: pathlib.Path) -> None:
    yaml_path = tmp_path / "coder.yaml"
    yaml_path.write_text("networking:\n  http:\n    maxTokenLifetime: 48h0m0s\n")
    app = make_app(
        argv=["--experiments", "foo,BAR"],
        env={"CODER_ACCESS_URL": "https://coder.example.com", "CODER_CONFIG_PATH": str(yaml_path)},
    )
    body = get_config(app, owner_token, auth)
    validate(body)
    options = {o["name"]: o for o in body["options"]}
    assert options["Access URL"]["value_source"] == "env"
    assert options["Access URL"]["value"]["host"] == "coder.example.com"
    assert options["Max Token Lifetime"]["value_source"] == "yaml"
    assert options["Max Token Lifetime"]["value"] == 48 * 3600 * 10**9
    assert options["Experiments"]["value_source"] == "flag"
    assert options["Experiments"]["value"] == ["foo", "BAR"]
    assert options["HTTP Address"]["value_source"] == "default"
    assert options["Wildcard Access URL"]["value_source"] == ""
    config = body["config"]
    assert config["access_url"]["host"] == "coder.example.com"
    assert config["access_url"]["scheme"] == "https"
    assert config["session_lifetime"]["max_token_lifetime"] == 48 * 3600 * 10**9
    assert config["experiments"] == ["foo", "BAR"]
    for opt in OPTIONS:
        if opt.name not in ("Access URL", "Max Token Lifetime", "Experiments", "Config Path"):
            # Options sharing a field share its source: either one's default makes both "default".
            defaulted = any(options[o.name]["default"] for o in OPTIONS_BY_FIELD[opt.field])
            assert options[opt.name]["value_source"] == ("default" if defaulted else ""), opt.name


@pytest.mark.wire_format("reference")
def test_shape_and_order(app: Flask, owner_token: str, auth: Auth) -> None:
    body = get_config(app, owner_token, auth)
    validate(body)
    assert list(body) == ["config", "options"]
    assert [o["name"] for o in body["options"]] == [o.name for o in OPTIONS]
    assert len(body["options"]) == 222
    config = body["config"]
    assert leaf_paths(config) == list(CONFIG_FIELDS)
    assert list(config)[:4] == ["verbose", "access_url", "wildcard_access_url", "docs_url"]
    assert list(config)[-3:] == ["config", "write_config", "address"]
    assert config["config_ssh"] == {"deploymentName": "coder.", "sshconfigOptions": []}
    assert config["address"] == {"host": "", "port": ""}
    assert config["tls"]["address"] == {"host": "127.0.0.1", "port": "3443"}
    assert config["access_url"]["user"] == {}
    assert config["support"]["links"] == {"value": []}
    assert config["external_auth"] == {"value": []}
    assert config["oidc"]["auth_url_params"] == {"access_type": "offline"}
    assert config["oidc"]["group_mapping"] == {}
    assert config["oidc"]["group_regex_filter"] == {}
    assert config["telemetry"]["trace"] is False
    assert config["proxy_trusted_headers"] == []
    assert config["pg_connection_url"] == ""
    assert config["external_token_encryption_keys"] == []
    assert config["retention"]["api_keys"] == 7 * 24 * 3600 * 10**9
    assert config["session_lifetime"]["max_token_lifetime"] == 3_155_760_000_000_000_000
    assert "null" not in json.dumps(body)

    for opt in body["options"]:
        keys = [k for k in OPTION_KEYS if k in opt or k not in ("group", "value")]
        assert list(opt) == keys, opt["name"]
    options = {o["name"]: o for o in body["options"]}
    regex = options["OIDC Regex Group Filter"]
    assert regex["value"] == ".*" and regex["default"] == ".*"
    assert options["Postgres Auth"]["value"] == "password"
    assert options["Config Path"]["flag_shorthand"] == "c"
    assert options["Address"]["flag_shorthand"] == "a"
    assert options["Write Config"]["env"] == ""
    assert "group" not in options["API Rate Limit"]
    assert options["Access URL"]["annotations"] == {"external_workspace_proxies": "true"}
    assert options["Trace Honeycomb API Key"]["annotations"] == {"external_workspace_proxies": "true", "secret": "true"}
    tls_group = options["TLS Address"]["group"]
    assert list(tls_group) == ["parent", "name", "yaml", "description"]
    assert tls_group["parent"]["name"] == "Networking" and "parent" not in tls_group["parent"]
    email_tls = options["Notifications: Email TLS: StartTLS"]["group"]
    assert [email_tls["parent"]["parent"]["name"], email_tls["parent"]["name"], email_tls["name"]] == [
        "Notifications",
        "Email",
        "Email TLS",
    ]
    assert options["Config Path"]["group"]["yaml"] == ""
    address = options["Address"]
    assert [u["name"] for u in address["use_instead"]] == ["HTTP Address", "TLS Address"]
    assert address["use_instead"][0]["value_source"] == ""
    assert address["use_instead"][0]["value"] == "127.0.0.1:3000"
    assert options["Docs URL"]["default"] == "https://coder.com/docs/@v2.29.0"
    assert options["Autobuild Poll Interval"]["hidden"] is True
    assert options["Autobuild Poll Interval"]["annotations"] == {"format_duration": "true"}


@pytest.mark.wire_format("reference")
def test_everything_set_still_validates(make_app: MakeApp, owner_token: str, auth: Auth) -> None:
    env = {
        "CODER_SUPPORT_LINKS": '[{"name": "Docs", "target": "https://d", "icon": "docs", "location": "navbar"}]',
        "CODER_OIDC_GROUP_MAPPING": '{"b": "x", "a": "y"}',
        "CODER_OIDC_USER_ROLE_MAPPING": '{"admins": ["owner"]}',
        "CODER_OIDC_ORGANIZATION_MAPPING": '{"org": ["0d9f3c6a-8e6b-4c31-9f43-2b3c8b1e4a10"]}',
        "CODER_EXTERNAL_AUTH_0_TYPE": "github",
        "CODER_EXTERNAL_AUTH_0_CLIENT_SECRET": "ext-secret-value",
        "CODER_EXTERNAL_AUTH_0_EXTRA_TOKEN_KEYS": "extra-key-value",
        "CODER_PROMETHEUS_ADDRESS": "[::1]:2112",
        "CODER_ACCESS_URL": "https://user:pw-value@coder.example.com:8443/x%2Fy?q=1#frag",
        "CODER_SSH_CONFIG_OPTIONS": "ForwardAgent yes",
        "CODER_PG_AUTH": "AWSIAMRDS",
    }
    app = make_app(env=env)
    body = get_config(app, owner_token, auth)
    validate(body)
    text = json.dumps(body)
    for hidden in ("ext-secret-value", "extra-key-value", "pw-value"):
        assert hidden not in text
    config = body["config"]
    assert list(config["oidc"]["group_mapping"]) == ["a", "b"]
    assert config["external_auth"]["value"][0]["type"] == "github"
    assert config["support"]["links"]["value"][0]["location"] == "navbar"
    assert config["prometheus"]["address"] == {"host": "::1", "port": "2112"}
    assert config["access_url"]["rawPath"] == "/x%2Fy" and config["access_url"]["path"] == "/x/y"
    assert config["config_ssh"]["sshconfigOptions"] == ["ForwardAgent yes"]
    assert config["pg_auth"] == "AWSIAMRDS"


SECRETS = {
    "OAuth2 GitHub Client Secret": "CODER_OAUTH2_GITHUB_CLIENT_SECRET",
    "OIDC Client Secret": "CODER_OIDC_CLIENT_SECRET",
    "Trace Honeycomb API Key": "CODER_TRACE_HONEYCOMB_API_KEY",
    "Provisioner Daemon Pre-shared Key (PSK)": "CODER_PROVISIONER_DAEMON_PSK",
    "Postgres Connection URL": "CODER_PG_CONNECTION_URL",
    "SCIM API Key": "CODER_SCIM_AUTH_HEADER",
    "External Token Encryption Keys": "CODER_EXTERNAL_TOKEN_ENCRYPTION_KEYS",
    "Email Auth: Password": "CODER_EMAIL_AUTH_PASSWORD",
    "AI Bridge OpenAI Key": "CODER_AIBRIDGE_OPENAI_KEY",
    "AI Bridge Anthropic Key": "CODER_AIBRIDGE_ANTHROPIC_KEY",
    "AI Bridge Bedrock Access Key": "CODER_AIBRIDGE_BEDROCK_ACCESS_KEY",
    "AI Bridge Bedrock Access Key Secret": "CODER_AIBRIDGE_BEDROCK_ACCESS_KEY_SECRET",
}


@pytest.mark.wire_format("reference")
def test_secrets_never_leave(
    make_app: MakeApp,
    owner_token: str,
    auditor_token: str,
    auth: Auth,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert {o.name for o in OPTIONS if o.secret} == {*SECRETS, "Notifications: Email Auth: Password"}
    sentinels = {name: f"sentinel-{i:02d}-zq" for i, name in enumerate(sorted(SECRETS))}
    env = {SECRETS[name]: value for name, value in sentinels.items()}
    # The connection URL must be a PostgreSQL URL to load: the sentinel is its password.
    env["CODER_PG_CONNECTION_URL"] = f"postgres://u:{sentinels['Postgres Connection URL']}@127.0.0.1/db"
    # The 13th secret shares its field with "Email Auth: Password"; it comes from a flag and wins.
    argv = ["--notifications-email-auth-password", "sentinel-13-zq", "--verbose"]
    all_sentinels = [*sentinels.values(), "sentinel-13-zq"]
    caplog.set_level(logging.DEBUG)
    values = load(argv, env)
    assert values.get("notifications.email.auth.password") == "sentinel-13-zq"
    app = make_app(values)
    client = app.test_client()
    bodies = [client.get(PATH, headers=auth(t)).data for t in (owner_token, auditor_token)]
    bodies.append(client.get("/api/v2/deployment/ssh", headers=auth(owner_token)).data)
    written = write_config_yaml(values)
    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records) + caplog.text + out + err
    for sentinel in all_sentinels:
        for body in bodies:
            assert sentinel.encode() not in body
        assert sentinel not in written
        assert sentinel not in logged
    body = json.loads(bodies[0])
    validate(body)
    options = {o["name"]: o for o in body["options"]}
    for name in [*SECRETS, "Notifications: Email Auth: Password"]:
        assert "value" not in options[name], name
        assert options[name]["annotations"]["secret"] == "true"
    assert options["Notifications: Email Auth: Password"]["value_source"] == "flag"
    assert options["OIDC Client Secret"]["value_source"] == "env"
    copy = options["Notifications: Email Auth: Password"]["use_instead"][0]
    assert copy["name"] == "Email Auth: Password" and "value" not in copy
    config = body["config"]
    assert config["oidc"]["client_secret"] == ""
    assert config["notifications"]["email"]["auth"]["password"] == ""
    assert config["external_token_encryption_keys"] == []
    assert config["pg_connection_url"] == ""


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("auditor", 200), ("member", 403)])
def test_rbac(app: Flask, who: str, status: int, request: pytest.FixtureRequest, auth: Auth) -> None:
    token = request.getfixturevalue(f"{who}_token")
    resp = app.test_client().get(PATH, headers=auth(token))
    assert resp.status_code == status
    if status == 403:
        assert resp.get_json() == {
            "message": "Forbidden.",
            "detail": (
                "You don't have permission to view this content. If you believe this is a mistake, please contact "
                "your administrator or try signing in with different credentials."
            ),
        }


@pytest.mark.parametrize("path", [PATH, "/api/v2/deployment/ssh", "/api/v2/experiments", "/api/v2/experiments/"])
def test_no_token_is_401(app: Flask, path: str) -> None:
    assert app.test_client().get(path).status_code == 401


def test_body_is_built_once(app: Flask, owner_token: str, auth: Auth) -> None:
    from coderapi.runtime import EXTENSION_KEY

    first = app.test_client().get(PATH, headers=auth(owner_token)).data
    assert first == app.extensions[EXTENSION_KEY].answers.deployment_config.body
