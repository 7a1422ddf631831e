"""Rate limiting on /api/v2 (coderd `httpmw/ratelimit.go` with go-chi/httprate).

`rate_limit.api` requests per minute per key, with a sliding-window counter. The key is
`<user id>:<path>:` when the request carries a valid token, else `<client ip>:<path>:` (IPv6 reduced to
its /64), where the path is the routed one (runs of `/` collapsed: coderd keys on the raw path, so N
slashes would give N budgets). The token is identified before the limiter counts (coderd's later
PrecheckAPIKey), so 401s and 404s are counted too.

Counters live in the node's store (`nodestore`: one budget for every worker of one `coderapi server`),
or in Redis when `CODERAPI_RATE_LIMIT_REDIS_URL` is set, then shared by every worker and node of the
deployment (keys are prefixed with the deployment id). When Redis cannot be reached, counting falls back
to the node's store (with a warning) and Redis is retried a little later; should the node's store fail
too, to process memory: a request is never failed because a counter store is down.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response, request
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter

from coderapi import rbac
from coderapi.httpapi import APIError
from coderapi.httpmw import environ as keys
from coderapi.httpmw.apikey import identify
from coderapi.httpmw.nodestore import NodeStorage, make_directory
from coderapi.httpmw.realip import client_ip
from coderapi.runtime import runtime

if TYPE_CHECKING:
    from coderapi.config import DeploymentValues
    from coderapi.config.settings import Settings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v2"
WINDOW_SECONDS = 60
WINDOW_TEXT = "1m0s"  # Go's time.Duration text for the window
DEFAULT_API_RATE_LIMIT = 512  # coderd.New turns 0 into this

LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"
RESET_HEADER = "X-RateLimit-Reset"
BYPASS_HEADER = "X-Coder-Bypass-Ratelimit"
RATE_LIMITED_MESSAGE = "You've been rate limited for sending more than {limit} requests in {window}."
BYPASS_DENIED_TEXT = f'"{BYPASS_HEADER}" provided but user is not {rbac.ROLE_OWNER}\n'

# How long to count in memory after Redis failed before trying it again.
REDIS_RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.5
# Go strconv.ParseBool's true spellings.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int


class RateLimiter:
    """Counts requests per key in a one-minute sliding window, in the node's store or in Redis.

    `node_dir` is the node's counter directory (made by the server before workers fork); without one
    the limiter makes a directory of its own, removed when it stops."""

    def __init__(self, limit: int, redis_url: str = "", key_prefix: str = "coderapi", node_dir: str = "") -> None:
        self.limit = limit
        self.item: RateLimitItem = RateLimitItemPerMinute(limit)
        self.node_storage = NodeStorage(node_dir or make_directory(), owns_directory=not node_dir)
        self.node = SlidingWindowCounterRateLimiter(self.node_storage)
        # The last resort, only when the node's store itself fails (a full or unwritable directory).
        self.memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.redis_storage: Storage | None = None
        self.shared: SlidingWindowCounterRateLimiter | None = None
        if redis_url:
            self.redis_storage = RedisStorage(
                redis_url,
                key_prefix=f"{key_prefix}:ratelimit",
                wrap_exceptions=True,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self.shared = SlidingWindowCounterRateLimiter(self.redis_storage)
        self._redis_down_until = 0.0
        self._node_failed = False
        self._lock = threading.Lock()

    def _hit_in(self, strategy: SlidingWindowCounterRateLimiter, key: str) -> Decision:
        allowed = strategy.hit(self.item, key)
        remaining = strategy.get_window_stats(self.item, key).remaining
        return Decision(allowed, max(0, remaining))

    def hit(self, key: str) -> Decision:
        """Count one request for `key` and say whether it is within the limit."""
        if self.shared is not None and time.monotonic() >= self._redis_down_until:
            try:
                return self._hit_in(self.shared, key)
            except StorageError as err:
                with self._lock:
                    first = self._redis_down_until == 0.0 or time.monotonic() >= self._redis_down_until
                    self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                if first:
                    log.warning("rate limit counters: redis unreachable, counting in the node's store: %s", err)
        try:
            return self._hit_in(self.node, key)
        except StorageError as err:
            with self._lock:
                first, self._node_failed = not self._node_failed, True
            if first:
                log.warning("rate limit counters: node store failed, counting in process memory: %s", err)
        return self._hit_in(self.memory, key)

    def stop(self) -> None:
        self.node_storage.close()
        if self.redis_storage is not None:
            pool = getattr(getattr(self.redis_storage, "storage", None), "connection_pool", None)
            if pool is not None:
                pool.disconnect()


def configured_limit(api: int | None, disable_all: bool) -> int:
    """The per-minute limit coderd applies; 0 or below means no limit."""
    if disable_all:
        return -1
    if api is None or api == 0:
        return DEFAULT_API_RATE_LIMIT
    return int(api)


def from_values(values: DeploymentValues, settings: Settings, deployment_id: str) -> RateLimiter | None:
    """The app's limiter, or None when rate limiting is off."""
    limit = configured_limit(values.effective.rate_limit.api, bool(values.effective.rate_limit.disable_all))
    if limit <= 0:
        return None
    return RateLimiter(limit, settings.rate_limit_redis_url, f"coderapi:{deployment_id}", settings.rate_limit_dir)


def _ip_key(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, 64), strict=False).network_address)
    return ip


def _fixed_window_end() -> int:
    return (math.floor(time.time()) // WINDOW_SECONDS + 1) * WINDOW_SECONDS


def limit_api_request() -> Response | None:
    """`before_request`: count the request under /api/v2 and refuse it over the limit (with the
    app's limiter; none when rate limiting is off).

    Aborts: 429 over the limit; 428 (text/plain) for the bypass header from a signed-in non-owner.
    """
    path = request.path
    if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
        return None
    limiter = runtime().limiter
    if limiter is None:
        return None
    who = identify()
    if who is None:
        key = f"{_ip_key(client_ip())}:{path}:"
    elif request.headers.get(BYPASS_HEADER, "").strip() in GO_TRUE:
        if not rbac.is_owner(who.user.rbac_roles):
            return Response(BYPASS_DENIED_TEXT, status=428, content_type="text/plain; charset=utf-8")
        # coderd counts an owner's bypass under a fresh random key: in effect no limit. Not counting
        # at all answers the same headers without filling the counter store during a load test.
        request.environ[keys.RATE_LIMIT] = (limiter.limit, limiter.limit - 1, _fixed_window_end())
        return None
    else:
        key = f"{who.user.id}:{path}:"
    decision = limiter.hit(key)
    request.environ[keys.RATE_LIMIT] = (limiter.limit, decision.remaining, _fixed_window_end())
    if not decision.allowed:
        message = RATE_LIMITED_MESSAGE.format(limit=limiter.limit, window=WINDOW_TEXT)
        raise APIError(429, message, headers={"Retry-After": str(WINDOW_SECONDS)})
    return None


def rate_limit_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The `X-Ratelimit-*` headers for the request the limiter counted (none when it did not). The root
    middleware adds them to the outgoing headers, so responses themselves are never changed."""
    state = environ.get(keys.RATE_LIMIT)
    if state is None:
        return []
    limit, remaining, reset = state
    return [(LIMIT_HEADER, str(limit)), (REMAINING_HEADER, str(remaining)), (RESET_HEADER, str(reset))]
