"""The per-app runtime: everything built once in `create_app` and read by handlers and middleware."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from coderapi.buildinfo import Build
    from coderapi.config import DeploymentValues
    from coderapi.config.settings import Settings
    from coderapi.database import Store
    from coderapi.httpapi import Prebuilt
    from coderapi.httpmw.apikey import AuthConfig
    from coderapi.httpmw.ratelimit import RateLimiter
    from coderapi.logs import RequestLog
    from coderapi.sdk.wireform import WireForm
    from coderapi.services.statscache import DeploymentStatsCache
    from coderapi.services.updatecheck import UpdateChecker

EXTENSION_KEY = "coderapi"


@dataclass(frozen=True)
class Answers:
    """The 200 answers whose bytes never change while the process runs, encoded once at startup."""

    buildinfo: Prebuilt
    deployment_config: Prebuilt
    ssh_config: Prebuilt
    experiments: Prebuilt
    experiments_available: Prebuilt
    swagger_doc: Prebuilt | None  # None with `swagger.enable` off
    swagger_page: Prebuilt | None


@dataclass
class Runtime:
    values: DeploymentValues
    settings: Settings
    store: Store
    build: Build
    deployment_id: str
    wire: WireForm  # the wire form every body is written in
    auth: AuthConfig  # what the token check reads from the options
    limiter: RateLimiter | None  # None with rate limiting off
    request_log: RequestLog  # the request lines' sinks, this app's own
    # Set by `create_app` once the runtime exists (the build info names the deployment).
    answers: Answers = field(init=False)
    # Background services, started last, on a complete app.
    stats: DeploymentStatsCache = field(init=False)
    update_checker: UpdateChecker | None = None  # None when checking is off or no release feed is known
    # What reading a request body raises when the client's framing is bad or the connection fails: OSError,
    # plus what the server adds (serving.py: gunicorn's chunked-body parser raises its own errors).
    body_read_errors: tuple[type[Exception], ...] = (OSError,)


def runtime() -> Runtime:
    """The current app's runtime; fails loudly outside an app built by `create_app`."""
    rt = current_app.extensions.get(EXTENSION_KEY)
    if rt is None:
        raise RuntimeError("coderapi runtime missing: the app was not built by create_app")
    return rt  # type: ignore[no-any-return]
