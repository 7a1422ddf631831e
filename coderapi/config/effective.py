"""The options that take effect in coderapi, typed: `values.effective.tls.enable` reads what
`values.get("tls.enable")` returns, with a type that "go to definition" and mypy see.

Groups follow the paths' dots, except `pg` and `proxy`, which group Coder's flat `pg_*` and
`proxy_trusted_*` fields; `effective()` names each path once. Durations are `int` nanoseconds, as the
Duration kind holds them. Built once when the configuration is loaded, like the values it reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from coderapi.config.urls import URL, HostPort


@dataclasses.dataclass(frozen=True, slots=True)
class TLS:
    enable: bool
    address: HostPort
    cert_file: list[str]
    key_file: list[str]
    client_auth: str
    client_ca_file: str
    min_version: str


@dataclasses.dataclass(frozen=True, slots=True)
class Prometheus:
    enable: bool
    address: HostPort


@dataclasses.dataclass(frozen=True, slots=True)
class Logging:
    human: str
    json: str
    stackdriver: str
    log_filter: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    api: int
    disable_all: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Proxy:
    trusted_headers: list[str]
    trusted_origins: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class SessionLifetime:
    disable_expiry_refresh: bool
    default_token_lifetime: int
    max_token_lifetime: int
    max_admin_token_lifetime: int


@dataclasses.dataclass(frozen=True, slots=True)
class Postgres:
    connection_url: str
    conn_max_open: int


@dataclasses.dataclass(frozen=True, slots=True)
class Swagger:
    enable: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Telemetry:
    enable: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Dangerous:
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
    """The options that take effect, each read by `get(config_path)`."""
    return Effective(
        access_url=get("access_url"),
        docs_url=get("docs_url"),
        http_address=get("http_address"),
        tls=TLS(
            enable=get("tls.enable"),
            address=get("tls.address"),
            cert_file=get("tls.cert_file"),
            key_file=get("tls.key_file"),
            client_auth=get("tls.client_auth"),
            client_ca_file=get("tls.client_ca_file"),
            min_version=get("tls.min_version"),
        ),
        prometheus=Prometheus(enable=get("prometheus.enable"), address=get("prometheus.address")),
        logging=Logging(
            human=get("logging.human"),
            json=get("logging.json"),
            stackdriver=get("logging.stackdriver"),
            log_filter=get("logging.log_filter"),
        ),
        verbose=get("verbose"),
        rate_limit=RateLimit(api=get("rate_limit.api"), disable_all=get("rate_limit.disable_all")),
        proxy=Proxy(trusted_headers=get("proxy_trusted_headers"), trusted_origins=get("proxy_trusted_origins")),
        session_lifetime=SessionLifetime(
            disable_expiry_refresh=get("session_lifetime.disable_expiry_refresh"),
            default_token_lifetime=get("session_lifetime.default_token_lifetime"),
            max_token_lifetime=get("session_lifetime.max_token_lifetime"),
            max_admin_token_lifetime=get("session_lifetime.max_admin_token_lifetime"),
        ),
        pg=Postgres(connection_url=get("pg_connection_url"), conn_max_open=get("pg_conn_max_open")),
        swagger=Swagger(enable=get("swagger.enable")),
        telemetry=Telemetry(enable=get("telemetry.enable")),
        dangerous=Dangerous(allow_all_cors=get("dangerous.allow_all_cors")),
        update_check=get("update_check"),
        cli_upgrade_message=get("cli_upgrade_message"),
        agent_stat_refresh_interval=get("agent_stat_refresh_interval"),
        write_config=get("write_config"),
    )
