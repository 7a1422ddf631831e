"""The options that take effect in coderapi, typed: `values.effective.tls.enable` reads what
`values.get("tls.enable")` returns, with a type that "go to definition" and mypy see.

A leaf's `config` path is its group's PREFIX and its name (`tls.` + `cert_file`; `pg_` + `connection_url`
for Coder's flat `pg_*` fields, `proxy_` + `trusted_origins` likewise); top-level leaves are their own
path. Durations are `int` nanoseconds, as the Duration kind holds them. Built once when the
configuration is loaded, like the values it reads.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from coderapi.config.urls import URL, HostPort

T = TypeVar("T")


@typing.dataclass_transform(frozen_default=True)
class _Group:
    """A frozen dataclass of options whose paths start with `prefix`."""

    PREFIX: ClassVar[str] = ""

    def __init_subclass__(cls, prefix: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.PREFIX = prefix
        dataclasses.dataclass(frozen=True)(cls)


class TLS(_Group, prefix="tls."):
    enable: bool
    address: HostPort
    cert_file: list[str]
    key_file: list[str]
    client_auth: str
    client_ca_file: str
    min_version: str


class Prometheus(_Group, prefix="prometheus."):
    enable: bool
    address: HostPort


class Logging(_Group, prefix="logging."):
    human: str
    json: str
    stackdriver: str
    log_filter: list[str]


class RateLimit(_Group, prefix="rate_limit."):
    api: int
    disable_all: bool


class Proxy(_Group, prefix="proxy_"):
    trusted_headers: list[str]
    trusted_origins: list[str]


class SessionLifetime(_Group, prefix="session_lifetime."):
    disable_expiry_refresh: bool
    default_token_lifetime: int
    max_token_lifetime: int
    max_admin_token_lifetime: int


class Postgres(_Group, prefix="pg_"):
    connection_url: str
    conn_max_open: int


class Swagger(_Group, prefix="swagger."):
    enable: bool


class Telemetry(_Group, prefix="telemetry."):
    enable: bool


class Dangerous(_Group, prefix="dangerous."):
    allow_all_cors: bool


class Effective(_Group):
    """The options coderapi acts on."""

    access_url: URL
    docs_url: URL
    http_address: str
    tls: TLS
    prometheus: Prometheus
    logging: Logging
    verbose: bool
    rate_limit: RateLimit
    proxy: Proxy
    session_lifetime: SessionLifetime
    pg: Postgres
    swagger: Swagger
    telemetry: Telemetry
    dangerous: Dangerous
    update_check: bool
    cli_upgrade_message: str
    agent_stat_refresh_interval: int
    write_config: bool


def effective(get: Callable[[str], Any]) -> Effective:
    """The options that take effect, each leaf read by `get(config_path)`."""
    return _build(Effective, "", get)


def _build(cls: type[T], prefix: str, get: Callable[[str], Any]) -> T:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = hints[f.name]
        is_group = isinstance(kind, type) and issubclass(kind, _Group)
        kwargs[f.name] = _build(kind, kind.PREFIX, get) if is_group else get(prefix + f.name)
    return cls(**kwargs)
