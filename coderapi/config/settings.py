"""coderapi's own settings (`CODERAPI_*`): what is not a Coder option.

They never appear in `/deployment/config`. This module and the option loader are the only places that
read the process environment.
"""

from __future__ import annotations

import os
import pathlib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

# The wire forms (see coderapi.sdk.wireform): the API reference's, or coderd's real one.
WIRE_FORMAT_REFERENCE = "reference"
WIRE_FORMAT_CODERD = "coderd"
WIRE_FORMATS = (WIRE_FORMAT_REFERENCE, WIRE_FORMAT_CODERD)
RATE_LIMIT_DIR_ENV = "CODERAPI_RATE_LIMIT_DIR"


class SettingsError(ValueError):
    """A `CODERAPI_*` variable has a value that cannot be used."""


def process_environ() -> Mapping[str, str]:
    """The process environment: the one place the service reads it."""
    return os.environ


@dataclass(frozen=True)
class Settings:
    data_dir: pathlib.Path
    # The project's source repository (`https://github.com/<owner>/<name>`); "" when none is known. The
    # build's `external_url`, its commit link and the release feed are derived from it.
    source_url: str = ""
    # The release feed the update checker reads; "" derives it from a GitHub `source_url` (else none).
    update_check_url: str = ""
    rate_limit_redis_url: str = ""
    # The node's rate-limit counter directory (shared by its workers); "" gives each app its own.
    rate_limit_dir: str = ""
    workers: int = 0  # 0: chosen from the CPU count when serving
    threads: int = 1
    # Git commit the running code was built from, when known (set by packaging or CI).
    git_commit: str = ""
    # PostgreSQL's token-lookup cache (LISTEN/NOTIFY); off behind a proxy that cannot LISTEN.
    token_cache: bool = True
    wire_format: str = WIRE_FORMAT_REFERENCE

    @property
    def release_feed_url(self) -> str:
        """The release feed: `update_check_url` when set, else GitHub's latest-release JSON of a GitHub
        `source_url`, else "" (no feed known)."""
        if self.update_check_url:
            return self.update_check_url
        repo = github_repository(self.source_url)
        return f"https://api.github.com/repos/{repo}/releases/latest" if repo else ""

    @property
    def sqlite_path(self) -> pathlib.Path:
        return self.data_dir / "coderapi.db"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = process_environ() if environ is None else environ
        data_dir = env.get("CODERAPI_DATA_DIR") or str(pathlib.Path.home() / ".config" / "coderapi")
        return cls(
            data_dir=pathlib.Path(data_dir).expanduser(),
            source_url=_url(env, "CODERAPI_SOURCE_URL"),
            update_check_url=_url(env, "CODERAPI_UPDATE_CHECK_URL"),
            rate_limit_redis_url=_redis_url(env, "CODERAPI_RATE_LIMIT_REDIS_URL"),
            rate_limit_dir=env.get(RATE_LIMIT_DIR_ENV, ""),
            workers=_int(env, "CODERAPI_WORKERS", 0, minimum=0),
            threads=_int(env, "CODERAPI_THREADS", 1, minimum=1),
            git_commit=env.get("CODERAPI_GIT_COMMIT", ""),
            token_cache=_switch(env, "CODERAPI_TOKEN_CACHE", True),
            wire_format=_choice(env, "CODERAPI_WIRE_FORMAT", WIRE_FORMATS),
        )


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("on", "true", "1"):
        return True
    if raw in ("off", "false", "0"):
        return False
    raise SettingsError(f"{name}: {raw!r} is not one of on, off")


def github_repository(url: str) -> str:
    """`owner/name` of a `https://github.com/owner/name` URL (a trailing `/` or `.git` allowed), else ""."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or parts.hostname != "github.com":
        return ""
    path = parts.path.strip("/").removesuffix(".git").split("/")
    return "/".join(path) if len(path) == 2 and all(path) else ""


def _url(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return ""
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name}: {raw!r} is not an http(s) URL")
    return raw.rstrip("/")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "")
    if raw == "":
        return choices[0]
    if raw not in choices:
        raise SettingsError(f"{name}: {raw!r} is not one of {', '.join(choices)}")
    return raw


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}: {raw!r} must be at least {minimum}")
    return value


# redis-py quotes the part it refuses (`... as 'x'`), which can be a piece of a password.
_QUOTED = re.compile(r"'[^']*'")


def _redis_url(env: Mapping[str, str], name: str) -> str:
    """The Redis URL, checked with redis-py's own parser (the one `limits` hands it to) now rather than
    when a worker first counts; the error names the setting, never the URL's text."""
    raw = env.get(name, "")
    if raw == "":
        return raw
    from redis.connection import parse_url

    try:
        # limits spells a socket `redis+unix://`, which redis-py knows as `unix://`.
        parse_url(raw.replace("redis+unix://", "unix://", 1))
    except ValueError as err:
        reason = _QUOTED.sub("'<redacted>'", str(err).strip().splitlines()[0] if str(err).strip() else "")
        raise SettingsError(f"{name}: not a Redis URL: {reason or 'cannot be parsed'}") from None
    return raw
