"""coderapi's own settings (`CODERAPI_*`): what is not a Coder option.

They never appear in `/deployment/config`. This module and the option loader are the only places that
read the process environment.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass

PROJECT_URL = "https://github.com/coderapi/coderapi"
DEFAULT_UPDATE_CHECK_URL = "https://api.github.com/repos/coderapi/coderapi/releases/latest"
RATE_LIMIT_DIR_ENV = "CODERAPI_RATE_LIMIT_DIR"


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
    # The node's rate-limit counter directory (shared by its workers); "" gives each app its own.
    rate_limit_dir: str = ""
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
            rate_limit_redis_url=env.get("CODERAPI_RATE_LIMIT_REDIS_URL", ""),
            rate_limit_dir=env.get(RATE_LIMIT_DIR_ENV, ""),
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
