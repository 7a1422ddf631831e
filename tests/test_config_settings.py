"""coderapi.config.settings: the CODERAPI_* settings and their checks."""

from __future__ import annotations

import pathlib

import pytest

from coderapi.config.settings import Settings, SettingsError
from coderapi.testing import child_env
from tests.conftest import assert_one_line_failure, run_coderapi


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache.example:6380", "unix:///tmp/r.sock", "redis+unix:///tmp/r"]
)
def test_redis_urls_limits_accepts(url: str, tmp_path: pathlib.Path) -> None:
    env = {"CODERAPI_DATA_DIR": str(tmp_path), "CODERAPI_RATE_LIMIT_REDIS_URL": url}
    assert Settings.from_environ(env).rate_limit_redis_url == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("notaurl", "must specify one of the following schemes"),
        ("redis://:hunter2", "Port could not be cast to integer value as '<redacted>'"),
        ("redis://[::1", "Invalid IPv6 URL"),
    ],
)
def test_a_bad_redis_url_is_refused_without_its_text(url: str, reason: str, tmp_path: pathlib.Path) -> None:
    env = {"CODERAPI_DATA_DIR": str(tmp_path), "CODERAPI_RATE_LIMIT_REDIS_URL": url}
    with pytest.raises(SettingsError) as caught:
        Settings.from_environ(env)
    message = str(caught.value)
    assert message.startswith("CODERAPI_RATE_LIMIT_REDIS_URL: not a Redis URL: "), message
    assert reason in message and "hunter2" not in message, message


def test_the_server_refuses_a_bad_redis_url_before_workers_boot(tmp_path: pathlib.Path) -> None:
    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "data"), "CODERAPI_RATE_LIMIT_REDIS_URL": "notaurl"})
    done = run_coderapi("server", "--http-address", "127.0.0.1:0", env=env, timeout=60)
    line = assert_one_line_failure(done, "notaurl")
    assert line.startswith("error: CODERAPI_RATE_LIMIT_REDIS_URL: not a Redis URL"), line
