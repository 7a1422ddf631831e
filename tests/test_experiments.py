"""GET /api/v2/experiments and /experiments/available."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import MakeApp

Auth = Callable[[str], dict[str, str]]


@pytest.mark.wire_format("reference")
def test_empty_by_default(make_app: MakeApp, member_token: str, auth: Auth) -> None:
    client = make_app().test_client()
    for path in ("/api/v2/experiments", "/api/v2/experiments/"):
        resp = client.get(path, headers=auth(member_token))
        assert resp.status_code == 200
        assert resp.data == b"[]\n"
    resp = client.get("/api/v2/experiments/available", headers=auth(member_token))
    assert resp.status_code == 200
    assert resp.data == b"[]\n"


def test_configured_experiments(make_app: MakeApp, member_token: str, auth: Auth) -> None:
    app = make_app(argv=["--experiments", "foo,BAR,*,Web-Push"], env={"CODER_EXPERIMENTS": "first"})
    resp = app.test_client().get("/api/v2/experiments", headers=auth(member_token))
    assert resp.get_json() == ["first", "foo", "bar", "web-push"]


def test_no_token(make_app: MakeApp) -> None:
    client = make_app().test_client()
    for path in ("/api/v2/experiments", "/api/v2/experiments/", "/api/v2/experiments/available"):
        assert client.get(path).status_code == 401
