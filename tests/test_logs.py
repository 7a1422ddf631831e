"""Logging as Coder's options configure it, and the per-request log line."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import pathlib
import re
import time
import types
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coderapi import logs
from coderapi.app import create_app, shutdown
from coderapi.config.settings import Settings
from coderapi.database import Store
from coderapi.httpmw import environ as environ_keys
from tests.conftest import MakeApp, MakeValues


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logs.configure()


def read_json_lines(path: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def request_lines(path: pathlib.Path) -> list[dict[str, object]]:
    return [e for e in read_json_lines(path) if e.get("logger_names") == ["coderapi", "http"]]


def test_json_request_line_carries_the_request_fields(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    log = tmp_path / "coderapi.json"
    app = make_app(argv=["--log-json", str(log), "--log-human", ""])
    resp = app.test_client().get("/api/v2/buildinfo")
    assert resp.status_code == 200
    (entry,) = request_lines(log)
    assert entry["level"] == "INFO"
    assert entry["msg"] == "GET /api/v2/buildinfo"
    fields = entry["fields"]
    assert isinstance(fields, dict)
    assert fields["request_id"] == resp.headers["X-Coder-Request-Id"]
    assert fields["method"] == "GET"
    assert fields["path"] == "/api/v2/buildinfo"
    assert fields["status"] == 200
    assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] >= 0
    assert fields["user_id"] == ""
    assert fields["client_ip"] == "127.0.0.1"
    assert str(entry["ts"]).endswith("Z")


def test_request_line_has_the_user_and_never_the_token(
    make_app: MakeApp, tmp_path: pathlib.Path, owner_token: str, auth: Callable[[str], dict[str, str]]
) -> None:
    log = tmp_path / "coderapi.json"
    human = tmp_path / "coderapi.log"
    stackdriver = tmp_path / "coderapi.sd.json"
    app = make_app(argv=["--log-json", str(log), "--log-human", str(human), "--log-stackdriver", str(stackdriver)])
    client = app.test_client()
    assert client.get("/api/v2/deployment/ssh", headers=auth(owner_token)).status_code == 200
    assert client.get(f"/api/v2/deployment/ssh?coder_session_token={owner_token}&x=1").status_code == 200
    client.set_cookie("coder_session_token", owner_token)
    assert client.get("/api/v2/deployment/ssh").status_code == 200
    secret = owner_token.split("-", 1)[1]
    for path in (log, human, stackdriver):
        text = path.read_text()
        assert secret not in text
        assert owner_token not in text
    entries = request_lines(log)
    assert len(entries) == 3
    user_ids = {e["fields"]["user_id"] for e in entries}  # type: ignore[index]
    assert len(user_ids) == 1 and "" not in user_ids
    assert entries[1]["fields"]["query"] == "coder_session_token=REDACTED&x=1"  # type: ignore[index]


def test_unauthenticated_request_is_logged_with_its_status(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    log = tmp_path / "coderapi.json"
    app = make_app(argv=["--log-json", str(log)])
    app.test_client().get(
        "/api/v2/deployment/ssh", headers={"Coder-Session-Token": "abcdefghij-abcdefghijklmnopqrstuv"}
    )
    (entry,) = request_lines(log)
    assert entry["fields"]["status"] == 401  # type: ignore[index]
    assert "abcdefghijklmnopqrstuv" not in log.read_text()


def test_stackdriver_and_human_formats(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    sd = tmp_path / "sd.json"
    human = tmp_path / "human.log"
    app = make_app(argv=["--log-stackdriver", str(sd), "--log-human", str(human)])
    resp = app.test_client().get("/api/v2/nope")
    assert resp.status_code == 404
    # Background services (the update check) may log to the same sinks: take the request lines.
    (entry,) = [e for e in map(json.loads, sd.read_text().splitlines()) if e["logName"] == "coderapi.http"]
    assert entry["severity"] == "INFO"
    assert entry["message"] == "GET /api/v2/nope"
    assert entry["status"] == 404
    assert entry["request_id"] == resp.headers["X-Coder-Request-Id"]
    assert "logging.googleapis.com/sourceLocation" in entry
    (line,) = [ln for ln in human.read_text().splitlines() if " coderapi.http: " in ln]
    assert " [info]  coderapi.http: GET /api/v2/nope  " in line
    assert "status=404" in line and f"request_id={resp.headers['X-Coder-Request-Id']}" in line


def test_server_errors_are_logged_at_warn(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    log = tmp_path / "coderapi.json"
    app = make_app(argv=["--log-json", str(log)])

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    assert app.test_client().get("/boom").status_code == 500
    (entry,) = request_lines(log)
    assert entry["level"] == "WARN"
    assert entry["fields"]["status"] == 500  # type: ignore[index]


# Loggers the tests below write to; background services of other tests' apps may write to the same sinks.
TEST_LOGGERS = {"coderapi", "coderapi.x", "coderapi.httpmw.ratelimit", "coderapi.stats"}


def _entries(path: pathlib.Path) -> list[str]:
    return [str(e["msg"]) for e in read_json_lines(path) if ".".join(e["logger_names"]) in TEST_LOGGERS]  # type: ignore[arg-type]


def test_debug_is_off_by_default_and_on_with_verbose(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "a.json"
    logs.configure(human="", json_path=str(out))
    logging.getLogger("coderapi.x").debug("hidden")
    logging.getLogger("coderapi.x").info("shown")
    logs.configure(human="", json_path=str(out), verbose=True)
    logging.getLogger("coderapi.x").debug("now shown")
    assert _entries(out) == ["shown", "now shown"]


def test_log_filter_passes_matching_debug_entries_only(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "a.json"
    logs.configure(human="", json_path=str(out), log_filter=["ratelimit", "^cache hit"])
    logging.getLogger("coderapi.httpmw.ratelimit").debug("counted")
    logging.getLogger("coderapi.stats").debug("cache hit for stats")
    logging.getLogger("coderapi.stats").debug("cache miss")
    logging.getLogger("coderapi.stats").warning("always")
    assert _entries(out) == ["counted", "cache hit for stats", "always"]


def test_bad_filter_and_unwritable_path_are_config_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(logs.LogConfigError, match="compile log filter"):
        logs.configure(log_filter=["("])
    with pytest.raises(logs.LogConfigError, match="open log file"):
        logs.configure(json_path=str(tmp_path / "missing-dir" / "x.json"))


def test_reconfigure_closes_earlier_files(tmp_path: pathlib.Path) -> None:
    first = tmp_path / "first.json"
    second = tmp_path / "second.json"
    logs.configure(human="", json_path=str(first))
    logging.getLogger("coderapi").info("one")
    logs.configure(human="", json_path=str(second))
    logging.getLogger("coderapi").info("two")
    assert _entries(first) == ["one"]
    assert _entries(second) == ["two"]
    assert open_files() & {first, second} == {second}


def open_files() -> set[pathlib.Path]:
    """The files this process holds open."""
    found = set()
    for fd in pathlib.Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own, another thread's)
            found.add(pathlib.Path(os.readlink(fd)))
    return found


def test_two_apps_write_their_own_request_lines(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    first = make_app(argv=["--log-json", str(one), "--log-human", ""])
    second = make_app(argv=["--log-json", str(two), "--log-human", ""])
    assert first.test_client().get("/api/v2/buildinfo").status_code == 200
    assert second.test_client().get("/api/v2/nope").status_code == 404
    assert first.test_client().get("/api/v2/").status_code == 200
    assert [e["msg"] for e in request_lines(one)] == ["GET /api/v2/buildinfo", "GET /api/v2/"]
    assert [e["msg"] for e in request_lines(two)] == ["GET /api/v2/nope"]


def test_shutdown_closes_the_request_log(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    log = tmp_path / "requests.json"
    app = make_app(argv=["--log-json", str(log), "--log-human", ""])
    logs.configure(human="")  # the process's own sinks elsewhere: only the app holds the file
    assert log in open_files()
    shutdown(app)
    assert log not in open_files()


def test_create_app_leaves_the_process_logging_alone(
    sqlite_store: Store, settings: Settings, make_values: MakeValues, tmp_path: pathlib.Path
) -> None:
    process, requests = tmp_path / "process.json", tmp_path / "requests.json"
    logs.configure(human="", json_path=str(process))
    app = create_app(make_values(["--log-json", str(requests), "--log-human", "", "--verbose"]), sqlite_store, settings)
    try:
        assert app.test_client().get("/api/v2/buildinfo").status_code == 200
        logging.getLogger("coderapi.x").debug("hidden")
        logging.getLogger("coderapi.x").info("shown")
    finally:
        shutdown(app)
    assert _entries(process) == ["shown"]
    assert [e["msg"] for e in request_lines(requests)] == ["GET /api/v2/buildinfo"]
    assert not [e for e in read_json_lines(requests) if e["msg"] in ("hidden", "shown")]


@pytest.mark.parametrize(
    ("query", "scrubbed"),
    [
        ("coder_session_token=abc", "coder_session_token=REDACTED"),
        ("a=1&access_token=xyz&b=2", "a=1&access_token=REDACTED&b=2"),
        ("Coder_Session_Token=abc", "Coder_Session_Token=REDACTED"),
        ("q=hello+world", "q=hello+world"),
        ("", ""),
    ],
)
def test_scrub_query(query: str, scrubbed: str) -> None:
    assert logs.scrub_query(query) == scrubbed


def test_exceptions_are_in_the_json_entry(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "a.json"
    logs.configure(human="", json_path=str(out))
    try:
        raise ValueError("kaput")
    except ValueError:
        logging.getLogger("coderapi.x").exception("failed")
    (entry,) = [e for e in read_json_lines(out) if e["msg"] == "failed"]
    assert entry["level"] == "ERROR"
    assert "ValueError: kaput" in entry["fields"]["error"]  # type: ignore[index]


NEEDS_QUOTES = re.compile(r'[\s"=]')


def human_text(value: str) -> str:
    return value if value and not NEEDS_QUOTES.search(value) else json.dumps(value, ensure_ascii=False)


@given(
    method=st.text(max_size=8),
    path=st.text(min_size=1, max_size=30),
    status=st.integers(100, 599),
    request_id=st.text(max_size=40),
    user_id=st.text(max_size=40),
    client_ip=st.text(max_size=40),
    query=st.sampled_from(["", "a=1", "coder_session_token=REDACTED"]),
)
def test_human_request_line_reads_as_ever(
    method: str, path: str, status: int, request_id: str, user_id: str, client_ip: str, query: str
) -> None:
    """The human sink's request line, byte for byte."""
    environ = {
        "REQUEST_METHOD": method,
        environ_keys.RAW_PATH: path.encode().decode("latin-1"),
        "QUERY_STRING": query,
        environ_keys.START: time.perf_counter(),
        environ_keys.REQUEST_ID: request_id,
        environ_keys.USER: types.SimpleNamespace(id=user_id) if user_id else None,
        environ_keys.CLIENT_IP: client_ip,
    }
    entry = logs.request_entry(environ, status)
    assert entry.fields is not None
    when = datetime.datetime.fromtimestamp(entry.created, datetime.UTC)
    level = "warn" if status >= 500 else "info"
    expected = (
        f"{when:%Y-%m-%d %H:%M:%S}.{when.microsecond // 1000:03d} [{level}]  coderapi.http: {method} {path}  "
        f"request_id={human_text(request_id)} method={human_text(method)} path={human_text(path)} "
        f"status={status} duration_ms={entry.fields['duration_ms']} user_id={human_text(user_id)} "
        f"client_ip={human_text(client_ip)}"
    )
    if query:
        expected += f" query={human_text(query)}"
    assert logs.HumanFormatter().render(entry) == expected
