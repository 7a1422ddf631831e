"""A real browser: headless Chromium (Debian's `chromium`) loads API pages of a live server, and the
text it renders is the JSON the API returns (charset, escaping and newline intact).

No network beyond 127.0.0.1: component updates, sync, background networking and QUIC are off, and the
profile is a fresh temporary directory.
"""

from __future__ import annotations

import html.parser
import json
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, live_server

pytestmark = pytest.mark.slow

TOKEN_HEADER = "Coder-Session-Token"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--metrics-recording-only",
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed, and CI is set")
    pytest.skip("chromium is not installed")


class PreText(html.parser.HTMLParser):
    """The text inside the first <pre> of a page (how Chromium shows a JSON document)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.seen = False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, _attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre" and not self.seen:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self.depth:
            self.depth -= 1
            self.seen = True

    def handle_data(self, data: str) -> None:
        if self.depth and not self.seen:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def dump_dom(url: str, profile: pathlib.Path) -> str:
    argv = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def page_text(url: str, profile: pathlib.Path) -> str:
    parser = PreText()
    parser.feed(dump_dom(url, profile))
    assert parser.seen, "no <pre> in the page Chromium rendered"
    return parser.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    chromium()
    with live_server(tmp_path_factory.mktemp("browser"), workers=1) as live:
        yield live


@pytest.fixture
def profile(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "chromium-profile"
    path.mkdir()
    return path


def test_buildinfo_in_chromium(server: LiveServer, profile: pathlib.Path) -> None:
    status, _headers, body = server.request("GET", "/api/v2/buildinfo")
    assert status == 200
    shown = page_text(server.url + "/api/v2/buildinfo", profile)
    assert json.loads(shown) == json.loads(body)
    # Byte for byte: the page's text is the body as sent (compact JSON and its newline).
    assert shown == body.decode("utf-8")
    # The browser's request reached this server (and was logged like any other).
    assert "GET /api/v2/buildinfo" in server.process.output()


def test_api_root_emoji_survives_the_browser(server: LiveServer, profile: pathlib.Path) -> None:
    # The raw UTF-8 emoji only renders right if the charset in Content-Type is honoured.
    shown = page_text(server.url + "/api/v2/", profile)
    assert json.loads(shown) == {"message": "👋"}


def test_error_envelope_in_chromium(server: LiveServer, profile: pathlib.Path) -> None:
    # No cookie in the fresh profile: the browser is signed out, and sees the envelope.
    status, _headers, body = server.request("GET", "/api/v2/deployment/config")
    assert status == 401
    shown = page_text(server.url + "/api/v2/deployment/config", profile)
    assert json.loads(shown) == json.loads(body)
    assert json.loads(shown)["message"].startswith("You are signed out")


def test_token_in_query_works_from_the_browser(server: LiveServer, profile: pathlib.Path) -> None:
    status, _headers, body = server.request(
        "GET", "/api/v2/users/me/keys/tokens/tokenconfig", {TOKEN_HEADER: server.member_token}
    )
    assert status == 200
    shown = page_text(
        server.url + f"/api/v2/users/me/keys/tokens/tokenconfig?coder_session_token={server.member_token}", profile
    )
    assert json.loads(shown) == json.loads(body) == {"max_token_lifetime": 3155760000000000000}
