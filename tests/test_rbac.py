"""Roles, and `authz.authorize` checking them in a request."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from flask import Flask, request

from coderapi import rbac
from coderapi.database.users import User
from coderapi.httpapi import APIError
from coderapi.httpmw import authz
from coderapi.httpmw import environ as environ_keys


def _user(*roles: str) -> User:
    at = dt.datetime.now(dt.UTC)
    return User(uuid.uuid4(), "u@example.com", "u", "active", tuple(roles), "password", at, at, None, False)


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [
        (("owner",), True),
        (("auditor",), True),
        ((), False),
        (("member",), False),
        (("template-admin",), False),
        (("user-admin",), False),
        (("template-admin", "user-admin"), False),
        (("user-admin", "auditor"), True),
    ],
)
@pytest.mark.parametrize("resource", [rbac.RESOURCE_DEPLOYMENT_CONFIG, rbac.RESOURCE_DEPLOYMENT_STATS])
def test_deployment_reads(roles: tuple[str, ...], allowed: bool, resource: str) -> None:
    assert rbac.allows(roles, rbac.ACTION_READ, resource) is allowed


def test_owner_can_do_anything() -> None:
    assert rbac.allows(("owner",), "delete", "anything")


def test_auditor_cannot_write() -> None:
    assert not rbac.allows(("auditor",), rbac.ACTION_UPDATE, rbac.RESOURCE_DEPLOYMENT_CONFIG)


@pytest.mark.parametrize(
    ("roles", "can_read_others"),
    [(("owner",), True), (("auditor",), True), (("template-admin",), True), (("user-admin",), True), ((), False)],
)
def test_user_read(roles: tuple[str, ...], can_read_others: bool) -> None:
    assert rbac.allows(roles, rbac.ACTION_READ, rbac.RESOURCE_USER) is can_read_others
    assert rbac.allows(roles, rbac.ACTION_READ, rbac.RESOURCE_USER, owned=True)


def test_parse_roles() -> None:
    assert rbac.parse_roles(["Owner", " auditor", "member", "", "owner"]) == ("owner", "auditor")
    with pytest.raises(rbac.UnknownRoleError, match="unknown role 'admin'"):
        rbac.parse_roles(["admin"])


def test_expand_adds_member() -> None:
    assert rbac.expand(("auditor",)) == ("auditor", "member")
    assert rbac.expand(()) == ("member",)


def test_authorize_raises_coderd_forbidden(app: Flask) -> None:
    with app.test_request_context("/"):
        request.environ[environ_keys.USER] = _user()
        with pytest.raises(APIError) as exc:
            authz.authorize(rbac.ACTION_READ, rbac.RESOURCE_DEPLOYMENT_CONFIG)
        err = exc.value
        assert err.status == 403
        assert err.headers == {}
        assert json.dumps(err.body(), separators=(",", ":")) == (
            '{"message":"Forbidden.","detail":"You don\'t have permission to view this content. If you believe '
            "this is a mistake, please contact your administrator or try signing in with different "
            'credentials."}'
        )
        request.environ[environ_keys.USER] = _user("auditor")
        authz.authorize(rbac.ACTION_READ, rbac.RESOURCE_DEPLOYMENT_CONFIG)


def test_authorize_without_token_check_fails_loudly(app: Flask) -> None:
    with app.test_request_context("/"), pytest.raises(RuntimeError):
        authz.authorize(rbac.ACTION_READ, rbac.RESOURCE_DEPLOYMENT_CONFIG)
