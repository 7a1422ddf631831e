"""The update checker (coderd's `updatecheck`): which release is the latest, checked at most once a day.

A background thread asks the release feed (GitHub's latest-release JSON: `tag_name`, `html_url`) and
stores the answer in `site_configs` under `last_update_check`, as coderd does. All workers and nodes
share that row, and a lease in `site_configs` lets only one of them ask the feed per 24 hours, failed
attempts included. GET /updatecheck reads the stored row and never waits for the network.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from coderapi import semver
from coderapi.database import Store
from coderapi.goformat import rfc3339
from coderapi.services.loop import BackgroundLoop

if TYPE_CHECKING:
    from coderapi.config import DeploymentValues
    from coderapi.config.settings import Settings
    from coderapi.runtime import Runtime

log = logging.getLogger("coderapi.updatecheck")

LAST_UPDATE_CHECK_KEY = "last_update_check"
LEASE_KEY = "update_check"
CHECK_INTERVAL = dt.timedelta(hours=24)
TIMEOUT_SECONDS = 30.0
# A release description is a few kilobytes; anything past this is not a release.
MAX_BODY_BYTES = 4 << 20
# While another worker holds the lease, look at its result this often.
LEASE_POLL = dt.timedelta(hours=1)
# How long a cached read of the stored result is served before reading it again.
READ_CACHE_SECONDS = 5.0

NEW_VERSION_MESSAGE = "new version of coder available"
INIT_FAILED = "init failed"
CHECK_FAILED = "update check failed"

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UpdateCheckError(Exception):
    """The release feed could not be asked, or answered something unusable."""


@dataclass(frozen=True)
class UpdateCheckResult:
    """coderd's `updatecheck.Result`, as stored in `site_configs`."""

    checked: dt.datetime
    version: str = ""
    url: str = ""

    def dumps(self) -> str:
        """coderd's JSON: `checked` always, `version` and `url` only when set."""
        data: dict[str, Any] = {"checked": rfc3339(self.checked)}
        if self.version:
            data["version"] = self.version
        if self.url:
            data["url"] = self.url
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> UpdateCheckResult:
        """Parse a stored value. Raises ValueError when it is not one."""
        try:
            data = json.loads(text)
            checked = dt.datetime.fromisoformat(str(data.get("checked") or "0001-01-01T00:00:00Z"))
        except (ValueError, TypeError, AttributeError) as err:
            raise ValueError(f"unmarshal last update check: {err}") from None
        if checked.tzinfo is None:
            checked = checked.replace(tzinfo=dt.UTC)
        version, url = data.get("version", ""), data.get("url", "")
        if not isinstance(version, str) or not isinstance(url, str):
            raise ValueError("unmarshal last update check: version and url must be strings")
        return cls(checked=checked, version=version, url=url)


def fetch_latest_release(url: str, timeout: float = TIMEOUT_SECONDS) -> tuple[str, str]:
    """Ask the release feed for the latest release: `(tag_name, html_url)`, empty when absent.
    Raises UpdateCheckError on any failure (network, timeout, non-200 status, bad JSON)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpdateCheckError(f"release feed URL must be http(s): {url!r}")
    # Like Go's ProxyFromEnvironment, never send loopback requests through a proxy.
    handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(urllib.request.Request(url, method="GET"), timeout=timeout) as resp:  # noqa: S310
            status, body = resp.status, resp.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as err:
        detail = err.read(4096).decode("utf-8", "replace")
        err.close()
        raise UpdateCheckError(f"unexpected status code {err.code}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise UpdateCheckError(f"get latest release: {err}") from None
    if status != 200:
        raise UpdateCheckError(f"unexpected status code {status}: {body[:4096].decode('utf-8', 'replace')}")
    if len(body) > MAX_BODY_BYTES:
        raise UpdateCheckError("release feed answer too large")
    try:
        release = json.loads(body)
    except ValueError as err:
        raise UpdateCheckError(f"decode release: {err}") from None
    if not isinstance(release, dict):
        raise UpdateCheckError("decode release: not a JSON object")
    tag, html_url = release.get("tag_name", ""), release.get("html_url", "")
    return (tag if isinstance(tag, str) else "", html_url if isinstance(html_url, str) else "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UpdateChecker(BackgroundLoop):
    """Checks the release feed in a daemon thread and reads the shared result for the endpoint.

    `start()` runs the loop in the calling process (again in a forked child), `stop()` ends it.
    """

    thread_name = "update-check"
    log = log
    failure = CHECK_FAILED
    retry_first = 1.0
    retry_max = 300.0
    stop_wait = 5.0  # a feed request in flight is abandoned (the thread is a daemon)

    def __init__(
        self,
        store: Store,
        feed_url: str,
        *,
        build_version: str,
        upgrade_docs_url: str = "",
        interval: dt.timedelta = CHECK_INTERVAL,
        timeout: float = TIMEOUT_SECONDS,
        clock: Clock = utcnow,
    ) -> None:
        super().__init__()
        self.store = store
        self.feed_url = feed_url
        self.build_version = build_version
        self.upgrade_docs_url = upgrade_docs_url
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.checks = 0  # feed requests this checker made
        self._cached: tuple[float, UpdateCheckResult | None] | None = None
        # The last result read from the database, kept through database outages (None: never read).
        self._last_read: tuple[UpdateCheckResult | None] | None = None
        self._notified = ""

    def latest(self) -> UpdateCheckResult | None:
        """The stored result (None when no check has ever succeeded), read at most every few
        seconds. While the database is unreachable, the last result read is answered, or None when
        this process has read none yet (a public endpoint keeps working through an outage, as if no
        check had succeeded). Raises ValueError for a stored value that does not parse."""
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < READ_CACHE_SECONDS:
            return cached[1]
        return self.read()

    def read(self) -> UpdateCheckResult | None:
        """The stored result read now, as `latest()` answers it (and keeps answering it for a few
        seconds). Raises ValueError for a stored value that does not parse."""
        self._cached = None
        try:
            text = self.store.get_site_config(LAST_UPDATE_CHECK_KEY)
        except SQLAlchemyError as err:
            log.warning("update check: database unreachable, answering the last result read: %s", type(err).__name__)
            return self._last_read[0] if self._last_read is not None else None
        result = UpdateCheckResult.loads(text) if text is not None else None
        self._cached = (time.monotonic(), result)
        self._last_read = (result,)
        return result

    def tick(self) -> float:
        """Check the feed when the stored result is missing or older than the interval and no other
        worker has tried within it. Returns the seconds until the next step. Raises the database's
        errors; the feed's are logged."""
        now = self.clock()
        try:
            last = self.read()
        except ValueError:
            last = None
        if last is not None and now - last.checked < self.interval:
            self._notify(last)
            return (last.checked + self.interval - now).total_seconds()
        token = self.store.take_lease(LEASE_KEY, now, self.interval)
        if token is None:
            return min(LEASE_POLL, self.interval).total_seconds()
        self.checks += 1
        try:
            version, url = fetch_latest_release(self.feed_url, self.timeout)
        except UpdateCheckError as err:
            log.error(CHECK_FAILED if self.settled.is_set() else INIT_FAILED, extra={"fields": {"error": str(err)}})
            return self.interval.total_seconds()
        result = UpdateCheckResult(checked=self.clock(), version=version, url=url)
        self.store.upsert_site_config(LAST_UPDATE_CHECK_KEY, result.dumps())
        self._cached = (time.monotonic(), result)
        self._last_read = (result,)
        self._notify(result)
        return self.interval.total_seconds()

    def _notify(self, result: UpdateCheckResult) -> None:
        """Log a release newer than this build, once per release version."""
        if result.version == self._notified:
            return
        self._notified = result.version
        if semver.compare(result.version, semver.release_version(self.build_version)) > 0:
            log.info(
                NEW_VERSION_MESSAGE,
                extra={
                    "fields": {
                        "new_version": result.version,
                        "url": result.url,
                        "upgrade_instructions": self.upgrade_docs_url.rstrip("/") + "/admin/upgrade",
                    }
                },
            )


def is_current(build_version: str, latest_version: str) -> bool:
    """coderd's `semver.Compare(ours, latest) >= 0`, with an invalid latest version counting as
    older than any valid one."""
    return semver.compare(semver.release_version(build_version), latest_version) >= 0


NO_FEED = (
    "update check: no release feed is known (set CODERAPI_SOURCE_URL or CODERAPI_UPDATE_CHECK_URL); answering current"
)


def announce(values: DeploymentValues, settings: Settings) -> None:
    """Say once, at info, when checking is on but no release feed is known (called by the server's
    entry points, before the workers start; each worker then just answers "current")."""
    if values.effective.update_check and not settings.release_feed_url:
        log.info(NO_FEED)


def from_runtime(rt: Runtime) -> UpdateChecker | None:
    """The app's started checker, or None when the `update_check` option is off or no release feed is
    known (then /updatecheck answers "current")."""
    if not rt.values.effective.update_check or not rt.settings.release_feed_url:
        return None
    checker = UpdateChecker(
        rt.store,
        rt.settings.release_feed_url,
        build_version=rt.build.version,
        upgrade_docs_url=str(rt.values.effective.docs_url or ""),
    )
    checker.start()
    return checker
