"""GET /api/v2/deployment/ssh: codersdk.SSHConfigResponse for any signed-in user."""

from __future__ import annotations

from collections.abc import Callable

import jsonschema

from tests.conftest import MakeApp
from tests.contract import definition_schema

Auth = Callable[[str], dict[str, str]]
PATH = "/api/v2/deployment/ssh"


def test_defaults_for_a_member(make_app: MakeApp, member_token: str, auth: Auth) -> None:
    resp = make_app().test_client().get(PATH, headers=auth(member_token))
    assert resp.status_code == 200
    assert resp.data == b'{"hostname_prefix":"coder.","hostname_suffix":"coder","ssh_config_options":{}}\n'


def test_configured(make_app: MakeApp, member_token: str, auth: Auth) -> None:
    app = make_app(
        argv=["--ssh-config-options", "b=2,a 1,c=x=y"],
        env={"CODER_SSH_HOSTNAME_PREFIX": "", "CODER_WORKSPACE_HOSTNAME_SUFFIX": "ws.example.com"},
    )
    body = app.test_client().get(PATH, headers=auth(member_token)).get_json()
    assert body == {
        "hostname_prefix": "coder.",
        "hostname_suffix": "ws.example.com",
        "ssh_config_options": {"a": "1", "b": "2", "c": "x=y"},
    }
    assert list(body["ssh_config_options"]) == ["a", "b", "c"]
    schema = definition_schema("codersdk.SSHConfigResponse")
    jsonschema.Draft4Validator(schema).validate(body)


def test_no_token(make_app: MakeApp) -> None:
    assert make_app().test_client().get(PATH).status_code == 401
