"""coderapi's own settings (`CODERAPI_*`): what is not a Coder option.

They never appear in `/deployment/config`. This module and the option loader are the only places that
read the process environment.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

PROJECT_URL = "https://github.com/coderapi/coderapi"
DEFAULT_UPDATE_CHECK_URL = "https://api.github.com/repos/coderapi/coderapi/releases/latest"


class SettingsError(ValueError):
    """A `CODERAPI_*` variable has a value that cannot be used."""


def process_environ() -> Mapping[str, str]:
    """The process environment: the one place the service reads it."""
    return os.environ


@dataclass(frozen=True)
class Settings:
    data_dir: pathlib.Path
    update_check_url: str = DEFAULT_UPDATE_CHECK_URL
    rate_limit_redis_url: str = ""
    workers: int = 0  # 0: chosen from the CPU count when serving
    threads: int = 1
    # Git commit the running code was built from, when known (set by packaging or CI).
    git_commit: str = ""

    @property
    def sqlite_path(self) -> pathlib.Path:
        return self.data_dir / "coderapi.db"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = process_environ() if environ is None else environ
        data_dir = env.get("CODERAPI_DATA_DIR") or str(pathlib.Path.home() / ".config" / "coderapi")
        return cls(
            data_dir=pathlib.Path(data_dir).expanduser(),
            update_check_url=env.get("CODERAPI_UPDATE_CHECK_URL") or DEFAULT_UPDATE_CHECK_URL,
            rate_limit_redis_url=_redis_url(env, "CODERAPI_RATE_LIMIT_REDIS_URL"),
            workers=_int(env, "CODERAPI_WORKERS", 0, minimum=0),
            threads=_int(env, "CODERAPI_THREADS", 1, minimum=1),
            git_commit=env.get("CODERAPI_GIT_COMMIT", ""),
        )


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
