"""The client's IP, decided as coderd's `httpmw.ExtractRealIP` does.

Forwarded headers count only when the TCP peer is inside one of `proxy_trusted_origins`; then the
`proxy_trusted_headers` are tried in order and the first whose value parses as an IP wins (first element
of a comma list; `host:port` accepted). Otherwise the peer address is the client.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import request

from coderapi.httpmw import environ as environ_keys

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProxyConfigError(ValueError):
    """A trusted origin is not a CIDR."""


@dataclass(frozen=True)
class RealIPConfig:
    trusted_origins: tuple[IPNetwork, ...] = ()
    trusted_headers: tuple[str, ...] = ()

    @classmethod
    def parse(cls, origins: Sequence[str], headers: Sequence[str]) -> RealIPConfig:
        nets = []
        for origin in origins:
            try:
                nets.append(ipaddress.ip_network(origin.strip(), strict=False))
            except ValueError as err:
                raise ProxyConfigError(f'parse proxy origin "{origin}": {err}') from None
        return cls(tuple(nets), tuple(h.strip() for h in headers if h.strip()))

    def client_ip(self, peer: str, header_values: dict[str, str]) -> str:
        peer_ip, peer_text = _peer(peer)
        if peer_ip is None:
            return peer_text
        if self.trusted_origins and any(peer_ip in net for net in self.trusted_origins):
            for name in self.trusted_headers:
                value = header_values.get(name)
                if value:
                    found = parse_ip(value.split(",", 1)[0].strip())
                    if found is not None:
                        return str(found)
        return peer_text

    def client_ip_of(self, environ: dict[str, Any]) -> str:
        """`client_ip` for a WSGI request."""
        peer = environ.get("REMOTE_ADDR") or ""
        if not self.trusted_origins:
            return _peer(peer)[1]
        return self.client_ip(peer, {name: environ.get(key, "") for name, key in self._header_keys})

    @functools.cached_property
    def _header_keys(self) -> tuple[tuple[str, str], ...]:
        return tuple((name, "HTTP_" + name.upper().replace("-", "_")) for name in self.trusted_headers)


@functools.lru_cache(maxsize=4096)
def _peer(peer: str) -> tuple[IPAddress | None, str]:
    """The TCP peer's IP and its text ("0.0.0.0" when unparseable), cached: peers repeat."""
    ip = parse_ip(peer)
    return ip, str(ip) if ip is not None else "0.0.0.0"


def parse_ip(text: str) -> IPAddress | None:
    """An IP from `ip`, `ipv4:port`, `[ipv6]` or `[ipv6]:port`; None when it is none of those."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        # Go's net.ParseIP refuses zones (`fe80::1%eth0`); a client-chosen zone of any length would
        # otherwise become the key's stored address.
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_ip() -> str:
    """The current request's client IP (set by the root middleware)."""
    ip = request.environ.get(environ_keys.CLIENT_IP)
    if ip is None:
        raise RuntimeError("client ip missing: the root middleware did not run (routes.mount)")
    return str(ip)
