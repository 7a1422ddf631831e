"""`{user}` resolution and GET /users/{user}/keys/tokens/tokenconfig."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from coderapi.database import Store
from coderapi.database.users import User
from tests.conftest import MakeApp, MakeToken, MakeUser

Auth = Callable[[str], dict[str, str]]
MEMBER_MAX = 3155760000000000000
ADMIN_MAX = 604800000000000


def tokenconfig(user: str) -> str:
    return f"/api/v2/users/{user}/keys/tokens/tokenconfig"


def test_me_member(client: FlaskClient, auth: Auth, member_token: str) -> None:
    resp = client.get(tokenconfig("me"), headers=auth(member_token))
    assert resp.status_code == 200
    assert resp.data == b'{"max_token_lifetime":3155760000000000000}\n'
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


def test_me_owner(client: FlaskClient, auth: Auth, owner_token: str) -> None:
    assert json.loads(client.get(tokenconfig("me"), headers=auth(owner_token)).data) == {
        "max_token_lifetime": ADMIN_MAX
    }


def test_lifetime_is_the_targets(client: FlaskClient, auth: Auth, owner: User, member: User, owner_token: str) -> None:
    # An owner asking about a member gets the member's cap, and about themselves the admin cap.
    assert json.loads(client.get(tokenconfig(str(member.id)), headers=auth(owner_token)).data) == {
        "max_token_lifetime": MEMBER_MAX
    }
    assert json.loads(client.get(tokenconfig("OWNER"), headers=auth(owner_token)).data) == {
        "max_token_lifetime": ADMIN_MAX
    }


def test_configured_caps(make_app: MakeApp, auth: Auth, owner_token: str, member_token: str) -> None:
    client = make_app(argv=["--max-token-lifetime", "720h", "--max-admin-token-lifetime", "1h30m"]).test_client()
    assert json.loads(client.get(tokenconfig("me"), headers=auth(member_token)).data) == {
        "max_token_lifetime": 720 * 3600 * 10**9
    }
    assert json.loads(client.get(tokenconfig("me"), headers=auth(owner_token)).data) == {
        "max_token_lifetime": 90 * 60 * 10**9
    }


@pytest.mark.parametrize("who", ["member", "MEMBER", "Member"])
def test_username_case_insensitive_self(client: FlaskClient, auth: Auth, member_token: str, who: str) -> None:
    assert client.get(tokenconfig(who), headers=auth(member_token)).status_code == 200


def test_member_resolves_self_by_uuid(client: FlaskClient, auth: Auth, member: User, member_token: str) -> None:
    assert client.get(tokenconfig(str(member.id)), headers=auth(member_token)).status_code == 200


@pytest.mark.parametrize("raw", ["owner", "nobody", "00000000-0000-0000-0000-000000000000", "not a user"])
def test_member_cannot_resolve_others(
    client: FlaskClient, auth: Auth, owner: User, member_token: str, raw: str
) -> None:
    resp = client.get(tokenconfig(raw), headers=auth(member_token))
    assert resp.status_code == 400
    assert json.loads(resp.data) == {
        "message": '"user" must be an existing uuid or username.',
        "detail": f'queried user="{raw}"',
    }


def test_member_cannot_resolve_owner_by_uuid(client: FlaskClient, auth: Auth, owner: User, member_token: str) -> None:
    resp = client.get(tokenconfig(str(owner.id)), headers=auth(member_token))
    assert resp.status_code == 400
    assert json.loads(resp.data)["detail"] == f'queried user="{owner.id}"'


@pytest.mark.parametrize("role", ["owner", "auditor", "user-admin", "template-admin"])
def test_privileged_roles_resolve_anyone(
    client: FlaskClient, auth: Auth, make_user: MakeUser, make_token: MakeToken, member: User, role: str
) -> None:
    admin = make_user("admin1", [role])
    resp = client.get(tokenconfig("member"), headers=auth(make_token(admin)))
    assert resp.status_code == 200
    assert client.get(tokenconfig(str(member.id)), headers=auth(make_token(admin))).status_code == 200


def test_deleted_user_not_found(client: FlaskClient, auth: Auth, store: Store, owner_token: str, member: User) -> None:
    store.delete_user(member.id)
    assert client.get(tokenconfig("member"), headers=auth(owner_token)).status_code == 400


def test_unknown_user_for_owner(client: FlaskClient, auth: Auth, owner_token: str) -> None:
    resp = client.get(tokenconfig("ghost"), headers=auth(owner_token))
    assert resp.status_code == 400
    assert json.loads(resp.data)["detail"] == 'queried user="ghost"'


def test_trailing_slash_is_not_found(client: FlaskClient, auth: Auth, member_token: str) -> None:
    resp = client.get(tokenconfig("me") + "/", headers=auth(member_token))
    assert resp.status_code == 404
    assert resp.data == b'{"message":"Route not found."}\n'


def test_without_token(client: FlaskClient) -> None:
    assert client.get(tokenconfig("me")).status_code == 401
