"""The per-app runtime: everything built once in `create_app` and read by handlers and middleware."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Response, current_app

from coderapi.httpapi.write import raw

if TYPE_CHECKING:
    from coderapi.buildinfo import Build
    from coderapi.config import DeploymentValues
    from coderapi.config.settings import Settings
    from coderapi.database import Store
    from coderapi.logs import RequestLog
    from coderapi.sdk.wireform import WireForm

EXTENSION_KEY = "coderapi"


@dataclass
class Runtime:
    values: DeploymentValues
    settings: Settings
    store: Store
    build: Build
    deployment_id: str
    wire: WireForm  # the wire form every body is written in
    request_log: RequestLog  # the request lines' sinks, this app's own
    # Response bodies that never change while the process runs, encoded once at startup.
    bodies: dict[str, bytes] = field(default_factory=dict)
    # Long-lived services (update checker, stats cache, rate limiter, …) by name.
    services: dict[str, Any] = field(default_factory=dict)
    _answers: dict[str, Response] = field(default_factory=dict)

    def answer(self, name: str) -> Response:
        """The 200 JSON response for `bodies[name]`, built on first use and answered to every request
        after: werkzeug copies a response's headers each time it sends it and never changes the response
        itself, and nothing in this service changes a response after its view (headers added per request
        go onto the outgoing list, in the root middleware). Saves building a response per request."""
        resp = self._answers.get(name)
        if resp is None:
            resp = self._answers[name] = raw(200, self.bodies[name])
        return resp


def runtime() -> Runtime:
    """The current app's runtime; fails loudly outside an app built by `create_app`."""
    rt = current_app.extensions.get(EXTENSION_KEY)
    if rt is None:
        raise RuntimeError("coderapi runtime missing: the app was not built by create_app")
    return rt  # type: ignore[no-any-return]
