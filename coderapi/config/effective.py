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


@dataclasses.dataclass(frozen=True, slots=True)
class TLS:
    PREFIX: ClassVar[str] = "tls."

    enable: bool
    address: HostPort
    cert_file: list[str]
    key_file: list[str]
    client_auth: str
    client_ca_file: str
    min_version: str


@dataclasses.dataclass(frozen=True, slots=True)
class Prometheus:
    PREFIX: ClassVar[str] = "prometheus."

    enable: bool
    address: HostPort


@dataclasses.dataclass(frozen=True, slots=True)
class Logging:
    PREFIX: ClassVar[str] = "logging."

    human: str
    json: str
    stackdriver: str
    log_filter: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    PREFIX: ClassVar[str] = "rate_limit."

    api: int
    disable_all: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Proxy:
    PREFIX: ClassVar[str] = "proxy_"

    trusted_headers: list[str]
    trusted_origins: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class SessionLifetime:
    PREFIX: ClassVar[str] = "session_lifetime."

    disable_expiry_refresh: bool
    default_token_lifetime: int
    max_token_lifetime: int
    max_admin_token_lifetime: int


@dataclasses.dataclass(frozen=True, slots=True)
class Postgres:
    PREFIX: ClassVar[str] = "pg_"

    connection_url: str
    conn_max_open: int


@dataclasses.dataclass(frozen=True, slots=True)
class Swagger:
    PREFIX: ClassVar[str] = "swagger."

    enable: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Telemetry:
    PREFIX: ClassVar[str] = "telemetry."

    enable: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Dangerous:
    PREFIX: ClassVar[str] = "dangerous."

    allow_all_cors: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Effective:
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
        group_prefix = getattr(kind, "PREFIX", None)
        kwargs[f.name] = get(prefix + f.name) if group_prefix is None else _build(kind, group_prefix, get)
    return cls(**kwargs)
