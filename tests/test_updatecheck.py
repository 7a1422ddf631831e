"""The update checker and GET /api/v2/updatecheck, against a fake release feed on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask

from coderapi import buildinfo, semver
from coderapi.config.settings import Settings
from coderapi.database import Store
from coderapi.runtime import EXTENSION_KEY, Runtime
from coderapi.services import updatecheck
from coderapi.services.updatecheck import LAST_UPDATE_CHECK_KEY, UpdateChecker, UpdateCheckError, UpdateCheckResult
from coderapi.testing import CLOSED_FEED_URL
from tests.conftest import MakeApp

RELEASE_URL = "https://github.com/coderapi/coderapi/releases/tag/v99.999.999"
SETTLE_TIMEOUT = 10.0


@dataclass
class FakeFeed:
    """A release feed on 127.0.0.1 answering `status` and `body`, counting requests. With `hold`
    set, each request waits (at most 10 s) until `release` is set."""

    status: int = 200
    body: bytes = b""
    requests: int = 0
    hold: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def answer(self, tag: str, url: str = RELEASE_URL) -> None:
        self.status, self.body = 200, json.dumps({"tag_name": tag, "html_url": url, "name": tag}).encode()


@pytest.fixture
def feed() -> Iterator[FakeFeed]:
    state = FakeFeed()
    state.answer("v99.999.999")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            if state.hold:
                state.release.wait(10)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/repos/coderapi/coderapi/releases/latest"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def feed_settings(settings: Settings, feed: FakeFeed) -> Settings:
    return replace(settings, update_check_url=feed.url)


def runtime_of(app: Flask) -> Runtime:
    rt: Runtime = app.extensions[EXTENSION_KEY]
    return rt


def checker_of(app: Flask) -> UpdateChecker:
    checker = runtime_of(app).update_checker
    assert isinstance(checker, UpdateChecker)
    return checker


def settled(app: Flask) -> UpdateChecker:
    checker = checker_of(app)
    assert checker.settled.wait(SETTLE_TIMEOUT), "the first check never finished"
    return checker


ENABLED = {"CODER_UPDATE_CHECK": "true"}


def get_update_check(app: Flask) -> tuple[int, bytes]:
    resp = app.test_client().get("/api/v2/updatecheck")
    return resp.status_code, resp.get_data()


def test_new_version(make_app: MakeApp, feed_settings: Settings, feed: FakeFeed) -> None:
    app = make_app(env=ENABLED, settings=feed_settings)
    settled(app)
    status, body = get_update_check(app)
    assert status == 200
    assert body == (b'{"current":false,"version":"v99.999.999","url":"' + RELEASE_URL.encode() + b'"}\n')
    assert feed.requests == 1


def test_restart_reuses_the_stored_result(
    make_app: MakeApp, feed_settings: Settings, feed: FakeFeed, store: Store
) -> None:
    first = make_app(env=ENABLED, settings=feed_settings)
    settled(first)
    assert feed.requests == 1
    stored = json.loads(store.get_site_config(LAST_UPDATE_CHECK_KEY) or "")
    assert list(stored) == ["checked", "version", "url"]
    assert stored["version"] == "v99.999.999"
    assert stored["checked"].endswith("Z")

    second = make_app(env=ENABLED, settings=feed_settings)
    assert settled(second).checks == 0
    assert feed.requests == 1
    status, body = get_update_check(second)
    assert (status, json.loads(body)) == (200, {"current": False, "version": "v99.999.999", "url": RELEASE_URL})


def test_same_version_is_current(make_app: MakeApp, feed_settings: Settings, feed: FakeFeed) -> None:
    # A release tagged with the running build's version, without its `-…` suffix.
    release = semver.release_version(buildinfo.detect(feed_settings.git_commit).version)
    feed.answer(release)
    app = make_app(env=ENABLED, settings=feed_settings)
    settled(app)
    status, body = get_update_check(app)
    assert (status, json.loads(body)) == (200, {"current": True, "version": release, "url": RELEASE_URL})


@pytest.mark.parametrize("status", [500, 404])
def test_feed_errors_answer_current(
    make_app: MakeApp, feed_settings: Settings, feed: FakeFeed, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    feed.status, feed.body = status, b'{"message":"boom"}'
    with caplog.at_level(logging.ERROR, logger="coderapi.updatecheck"):
        app = make_app(env=ENABLED, settings=feed_settings)
        settled(app)
    assert feed.requests == 1
    rt = runtime_of(app)
    status_code, body = get_update_check(app)
    assert (status_code, json.loads(body)) == (
        200,
        {"current": True, "version": rt.build.version, "url": rt.build.external_url},
    )
    failures = [r for r in caplog.records if r.getMessage() == updatecheck.INIT_FAILED]
    assert len(failures) == 1
    assert f"unexpected status code {status}" in failures[0].fields["error"]  # type: ignore[attr-defined]


def test_feed_down_answers_current(make_app: MakeApp, settings: Settings) -> None:
    app = make_app(env=ENABLED, settings=replace(settings, update_check_url=CLOSED_FEED_URL))
    settled(app)
    rt = runtime_of(app)
    status, body = get_update_check(app)
    assert status == 200
    assert json.loads(body) == {"current": True, "version": rt.build.version, "url": rt.build.external_url}


def test_never_waits_for_the_feed(make_app: MakeApp, feed_settings: Settings, feed: FakeFeed) -> None:
    feed.hold = True
    app = make_app(env=ENABLED, settings=feed_settings)
    checker = checker_of(app)
    status, body = get_update_check(app)
    # Answered while the feed still holds the checker's request.
    assert not checker.settled.is_set()
    assert status == 200
    assert json.loads(body)["current"] is True
    feed.release.set()
    settled(app)


def test_disabled_never_asks(make_app: MakeApp, feed_settings: Settings, feed: FakeFeed) -> None:
    app = make_app(env={"CODER_UPDATE_CHECK": "false"}, settings=feed_settings)
    rt = runtime_of(app)
    assert rt.update_checker is None
    _, body = get_update_check(app)
    assert (
        body
        == json.dumps(
            {"current": True, "version": rt.build.version, "url": rt.build.external_url}, separators=(",", ":")
        ).encode()
        + b"\n"
    )
    assert feed.requests == 0


def test_unreadable_stored_result_is_500(make_app: MakeApp, store: Store, settings: Settings) -> None:
    app = make_app(env=ENABLED, settings=replace(settings, update_check_url=CLOSED_FEED_URL))
    settled(app)
    store.upsert_site_config(LAST_UPDATE_CHECK_KEY, "{not json")
    with pytest.raises(ValueError, match="unmarshal last update check"):
        checker_of(app).read()
    status, body = get_update_check(app)
    assert status == 500
    got = json.loads(body)
    assert got["message"] == "An internal server error occurred."
    assert got["detail"].startswith("unmarshal last update check")


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def test_one_check_per_interval_across_workers(store: Store, feed: FakeFeed) -> None:
    clock = Clock(dt.datetime(2026, 11, 29, 6, 0, tzinfo=dt.UTC))
    workers = [UpdateChecker(store, feed.url, build_version="v1.0.0", clock=clock) for _ in range(3)]
    delays = [w.tick() for w in workers]
    assert feed.requests == 1
    assert sum(w.checks for w in workers) == 1
    assert delays[0] == pytest.approx(24 * 3600)
    assert all(d <= 24 * 3600 for d in delays)
    for w in workers:
        assert w.latest() == UpdateCheckResult(clock.at, "v99.999.999", RELEASE_URL)

    clock.at += dt.timedelta(hours=23)
    for w in workers:
        w.tick()
    assert feed.requests == 1

    clock.at += dt.timedelta(hours=2)
    feed.answer("v100.0.0")
    for w in workers:
        w.tick()
    assert feed.requests == 2
    result = workers[2].read()
    assert result is not None and result.version == "v100.0.0"
    assert workers[2].latest() == result


def test_a_failed_check_waits_a_day(store: Store, feed: FakeFeed) -> None:
    clock = Clock(dt.datetime(2026, 11, 29, 6, 0, tzinfo=dt.UTC))
    feed.status = 502
    first = UpdateChecker(store, feed.url, build_version="v1.0.0", clock=clock)
    assert first.tick() == pytest.approx(24 * 3600)
    assert first.latest() is None
    feed.answer("v2.0.0")
    clock.at += dt.timedelta(hours=12)
    UpdateChecker(store, feed.url, build_version="v1.0.0", clock=clock).tick()
    assert feed.requests == 1
    clock.at += dt.timedelta(hours=12, seconds=1)
    UpdateChecker(store, feed.url, build_version="v1.0.0", clock=clock).tick()
    assert feed.requests == 2


def test_newer_release_is_logged_once(store: Store, feed: FakeFeed, caplog: pytest.LogCaptureFixture) -> None:
    checker = UpdateChecker(
        store, feed.url, build_version="v1.2.3-devel+abc", upgrade_docs_url="https://coder.com/docs/"
    )
    with caplog.at_level(logging.INFO, logger="coderapi.updatecheck"):
        checker.tick()
        checker.tick()
    notes = [r for r in caplog.records if r.getMessage() == updatecheck.NEW_VERSION_MESSAGE]
    assert len(notes) == 1
    assert notes[0].levelno == logging.INFO
    assert notes[0].fields == {  # type: ignore[attr-defined]
        "new_version": "v99.999.999",
        "url": RELEASE_URL,
        "upgrade_instructions": "https://coder.com/docs/admin/upgrade",
    }


def test_not_newer_is_not_logged(store: Store, feed: FakeFeed, caplog: pytest.LogCaptureFixture) -> None:
    feed.answer("v1.2.3")
    with caplog.at_level(logging.INFO, logger="coderapi.updatecheck"):
        UpdateChecker(store, feed.url, build_version="v1.2.3+abc").tick()
    assert not [r for r in caplog.records if r.getMessage() == updatecheck.NEW_VERSION_MESSAGE]


def test_release_without_fields_is_stored_empty(store: Store, feed: FakeFeed) -> None:
    feed.body = b"{}"
    UpdateChecker(store, feed.url, build_version="v1.0.0").tick()
    stored = json.loads(store.get_site_config(LAST_UPDATE_CHECK_KEY) or "")
    assert list(stored) == ["checked"]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"not json", "decode release"), (b"[1]", "not a JSON object")],
)
def test_fetch_rejects_bad_bodies(feed: FakeFeed, body: bytes, message: str) -> None:
    feed.body = body
    with pytest.raises(UpdateCheckError, match=message):
        updatecheck.fetch_latest_release(feed.url, timeout=5)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "not a url"])
def test_fetch_only_http(url: str) -> None:
    with pytest.raises(UpdateCheckError, match="must be http"):
        updatecheck.fetch_latest_release(url)


def test_result_json_round_trip() -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC)
    result = UpdateCheckResult(at, "v2.29.1", "https://example.com/r")
    assert result.dumps() == '{"checked":"2026-01-02T03:04:05.12Z","version":"v2.29.1","url":"https://example.com/r"}'
    assert UpdateCheckResult.loads(result.dumps()) == result
    assert UpdateCheckResult(at).dumps() == '{"checked":"2026-01-02T03:04:05.12Z"}'
    # coderd writes local time with nanoseconds.
    go = UpdateCheckResult.loads('{"checked":"2026-01-02T05:04:05.123456789+02:00","version":"v1"}')
    assert go.checked == dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    for bad in ("{", "[]", '{"checked":"yesterday"}', '{"checked":"2026-01-02T03:04:05Z","version":5}'):
        with pytest.raises(ValueError, match="unmarshal"):
            UpdateCheckResult.loads(bad)


SEMVER_CASES: list[tuple[str, str, int]] = [
    ("v1.2.3", "v1.2.3", 0),
    ("v1.2.3", "v1.2.4", -1),
    ("v1.10.0", "v1.9.0", 1),
    ("v2", "v2.0.0", 0),
    ("v2.1", "v2.1.0", 0),
    ("v1.2.3+build.5", "v1.2.3", 0),
    ("v1.2.3-alpha", "v1.2.3", -1),
    ("v1.2.3-alpha", "v1.2.3-alpha.1", -1),
    ("v1.2.3-alpha.1", "v1.2.3-alpha.beta", -1),
    ("v1.2.3-alpha.beta", "v1.2.3-beta", -1),
    ("v1.2.3-beta.2", "v1.2.3-beta.11", -1),
    ("v1.2.3-rc.1", "v1.2.3-rc.1", 0),
    ("v1.2.3-1", "v1.2.3-a", -1),
    ("v99.999.999", "v2.29.0", 1),
    ("1.2.3", "v0.0.1", -1),  # no v prefix: invalid
    ("", "v0.0.0", -1),
    ("", "garbage", 0),  # invalid strings are equal
    ("v01.2.3", "v1.2.3", -1),  # leading zero: invalid
    ("v1.2-pre", "v0.0.1", -1),  # shorthand with prerelease: invalid
    ("v1.2.3-01", "v1.0.0", -1),  # numeric prerelease with leading zero: invalid
    ("v1.2.3-", "v1.0.0", -1),
    ("v1.2.3+", "v1.0.0", -1),
    ("v1.2.3-a..b", "v1.0.0", -1),
    ("v1.2.3-a_b", "v1.0.0", -1),
    ("v1.2.3+meta-data.01", "v1.2.3", 0),  # leading zeros are fine in build metadata
    ("v1.2.3.4", "v1.0.0", -1),
    ("v１.2.3", "v1.0.0", -1),  # non-ASCII digit
]


@pytest.mark.parametrize(("v", "w", "want"), SEMVER_CASES)
def test_semver_compare(v: str, w: str, want: int) -> None:
    assert semver.compare(v, w) == want
    assert semver.compare(w, v) == -want


def test_is_current_cuts_the_build_suffix() -> None:
    assert updatecheck.is_current("v2.29.0-devel+abc", "v2.29.0")
    assert not updatecheck.is_current("v2.29.0-devel+abc", "v2.29.1")
    assert updatecheck.is_current("v2.29.1+abc1234", "v2.29.1")
    assert updatecheck.is_current("v2.29.1", "")  # invalid saved version: current
    assert updatecheck.is_current("v2.29.1", "nonsense")
