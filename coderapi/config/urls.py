"""URLs and host:port pairs as configuration values: Go's `net/url` (approximated closely enough for
configuration values) and serpent's HostPort (`net.SplitHostPort`)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from coderapi.goformat import quote

_ENC_PATH, _ENC_PATH_SEGMENT, _ENC_HOST, _ENC_ZONE, _ENC_USER, _ENC_QUERY, _ENC_FRAGMENT = range(7)
_HEX = "0123456789abcdefABCDEF"


def _should_escape(c: int, mode: int) -> bool:
    ch = chr(c)
    if ch.isascii() and ch.isalnum():
        return False
    if mode in (_ENC_HOST, _ENC_ZONE) and ch in "!$&'()*+,;=:[]<>\"":
        return False
    if ch in "-_.~":
        return False
    if ch in "$&+,/:;=?@":
        if mode == _ENC_PATH_SEGMENT:
            return ch in "/;,?"
        if mode == _ENC_PATH:
            return ch == "?"
        if mode == _ENC_USER:
            return ch in "@/?:"
        if mode == _ENC_QUERY:
            return True
        if mode == _ENC_FRAGMENT:
            return False
    return not (mode == _ENC_FRAGMENT and ch in "!()*")


def _escape(s: str, mode: int) -> str:
    out = []
    for b in s.encode("utf-8", "surrogateescape"):
        if _should_escape(b, mode):
            out.append("+" if b == 0x20 and mode == _ENC_QUERY else f"%{b:02X}")
        else:
            out.append(chr(b))
    return "".join(out)


def _unescape(s: str, mode: int) -> str:
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "%":
            if i + 2 >= n or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise ValueError(f"invalid URL escape {quote(s[i : i + 3])}")
            if mode == _ENC_HOST and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                raise ValueError(f"invalid URL escape {quote(s[i : i + 3])}")
            i += 3
            continue
        if mode in (_ENC_HOST, _ENC_ZONE) and ord(c) < 0x80 and _should_escape(ord(c), mode):
            raise ValueError(f"invalid character {quote(c)} in host name")
        i += 1
    if "%" not in s:
        return s
    raw = bytearray()
    i = 0
    data = s.encode("utf-8", "surrogateescape")
    while i < len(data):
        if data[i] == 0x25:
            raw.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(data[i])
            i += 1
    return raw.decode("utf-8", "surrogateescape")


def _valid_encoded(s: str, mode: int) -> bool:
    for b in s.encode("utf-8", "surrogateescape"):
        ch = chr(b)
        if ch in "!$&'()*+,;=:@[]%":
            continue
        if _should_escape(b, mode):
            return False
    return True


def _kept_raw(decoded: str, raw: str, mode: int) -> str:
    """`raw` when it is a valid encoding of `decoded` (Go keeps the original spelling then), else ""."""
    if raw and _valid_encoded(raw, mode):
        try:
            if _unescape(raw, mode) == decoded:
                return raw
        except ValueError:
            pass
    return ""


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all(c in string.digits for c in port[1:]))


@dataclass(frozen=True)
class URL:
    """A parsed URL (Go's `url.URL`). `str()` is the canonical text, `""` when unset."""

    scheme: str = ""
    opaque: str = ""
    username: str | None = None  # None: no user info at all
    password: str | None = None  # None: no password
    host: str = ""
    path: str = ""
    raw_path: str = ""
    omit_host: bool = False
    force_query: bool = False
    raw_query: str = ""
    fragment: str = ""
    raw_fragment: str = ""

    @property
    def hostname(self) -> str:
        """The host without a port or IPv6 brackets."""
        host = self.host
        if host.startswith("["):
            end = host.find("]")
            return host[1:end] if end >= 0 else host[1:]
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def port(self) -> str:
        host = self.host
        if host.startswith("["):
            end = host.find("]")
            rest = host[end + 1 :] if end >= 0 else ""
            return rest[1:] if rest.startswith(":") else ""
        return host.rsplit(":", 1)[1] if ":" in host else ""

    def escaped_path(self) -> str:
        raw = _kept_raw(self.path, self.raw_path, _ENC_PATH)
        if raw:
            return raw
        return "*" if self.path == "*" else _escape(self.path, _ENC_PATH)

    def escaped_fragment(self) -> str:
        return _kept_raw(self.fragment, self.raw_fragment, _ENC_FRAGMENT) or _escape(self.fragment, _ENC_FRAGMENT)

    def __str__(self) -> str:
        buf = ""
        if self.scheme:
            buf += self.scheme + ":"
        if self.opaque:
            buf += self.opaque
        else:
            has_user = self.username is not None
            if (self.scheme or self.host or has_user) and not (self.omit_host and not self.host and not has_user):
                if self.host or self.path or has_user:
                    buf += "//"
                if has_user:
                    buf += _escape(self.username or "", _ENC_USER)
                    if self.password is not None:
                        buf += ":" + _escape(self.password, _ENC_USER)
                    buf += "@"
                if self.host:
                    buf += _escape(self.host, _ENC_HOST)
            path = self.escaped_path()
            if path and path[0] != "/" and self.host:
                buf += "/"
            if not buf:
                segment = path.split("/", 1)[0]
                if ":" in segment:
                    buf += "./"
            buf += path
        if self.force_query or self.raw_query:
            buf += "?" + self.raw_query
        if self.fragment:
            buf += "#" + self.escaped_fragment()
        return buf


EMPTY_URL = URL()


def parse_url(raw: str) -> URL:
    """Go's `url.Parse`: accepts almost anything, relative references included."""
    rest_all, _, frag = raw.partition("#")
    try:
        parts = _parse_url(rest_all)
        if frag:
            fragment = _unescape(frag, _ENC_FRAGMENT)
            parts["fragment"] = fragment
            parts["raw_fragment"] = "" if _escape(fragment, _ENC_FRAGMENT) == frag else frag
    except ValueError as err:
        raise ValueError(f"parse {quote(raw)}: {err}") from None
    return URL(**parts)


def _parse_url(raw: str) -> dict[str, Any]:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError("net/url: invalid control character in URL")
    parts: dict[str, Any] = {}
    if raw == "*":
        return {"path": "*"}
    scheme, rest = _get_scheme(raw)
    parts["scheme"] = scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        parts["force_query"] = True
        rest = rest[:-1]
    else:
        rest, _, parts["raw_query"] = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            parts["opaque"] = rest
            return parts
        if ":" in rest.split("/", 1)[0]:
            raise ValueError("first path segment in URL cannot contain colon")
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, rest = rest[2:], ""
        slash = authority.find("/")
        if slash >= 0:
            authority, rest = authority[:slash], authority[slash:]
        _parse_authority(authority, parts)
    elif scheme and rest.startswith("/"):
        parts["omit_host"] = True
    path = _unescape(rest, _ENC_PATH)
    parts["path"] = path
    parts["raw_path"] = "" if _escape(path, _ENC_PATH) == rest else rest
    return parts


def _get_scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c in string.digits or c in "+-.":
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise ValueError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


_USERINFO_OK = set("-._:~!$&'()*+,;=%@")


def _parse_authority(authority: str, parts: dict[str, Any]) -> None:
    at = authority.rfind("@")
    parts["host"] = _parse_host(authority[at + 1 :] if at >= 0 else authority)
    if at < 0:
        return
    userinfo = authority[:at]
    if not all((c.isascii() and c.isalnum()) or c in _USERINFO_OK for c in userinfo):
        raise ValueError("net/url: invalid userinfo")
    if ":" in userinfo:
        user, _, password = userinfo.partition(":")
        parts["username"] = _unescape(user, _ENC_USER)
        parts["password"] = _unescape(password, _ENC_USER)
    else:
        parts["username"] = _unescape(userinfo, _ENC_USER)


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise ValueError("missing ']' in host")
        colon_port = host[end + 1 :]
        if not _valid_optional_port(colon_port):
            raise ValueError(f"invalid port {quote(colon_port)} after host")
        zone = host[:end].find("%25")
        if zone >= 0:
            head, zone_id, tail = host[:zone], host[zone:end], host[end:]
            return _unescape(head, _ENC_HOST) + _unescape(zone_id, _ENC_ZONE) + _unescape(tail, _ENC_HOST)
    elif ":" in host:
        colon_port = host[host.rfind(":") :]
        if not _valid_optional_port(colon_port):
            raise ValueError(f"invalid port {quote(colon_port)} after host")
    return _unescape(host, _ENC_HOST)


@dataclass(frozen=True)
class HostPort:
    """A host:port pair (serpent's HostPort). `str()` is `host:port`, `""` when both are empty."""

    host: str = ""
    port: str = ""

    def __str__(self) -> str:
        if not self.host and not self.port:
            return ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


EMPTY_HOSTPORT = HostPort()


def parse_host_port(text: str) -> HostPort:
    """serpent's HostPort.Set: refuses empty input, then Go's `net.SplitHostPort`."""
    if text == "":
        raise ValueError("must not be empty")

    def fail(reason: str) -> ValueError:
        return ValueError(f"address {text}: {reason}")

    last = text.rfind(":")
    if last < 0:
        raise fail("missing port in address")
    if text[0] == "[":
        end = text.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(text):
            raise fail("missing port in address")
        if end + 1 != last:
            raise fail("too many colons in address" if text[end + 1] == ":" else "missing port in address")
        host = text[1:end]
        j, k = 1, end + 1
    else:
        host = text[:last]
        if ":" in host:
            raise fail("too many colons in address")
        j, k = 0, 0
    if "[" in text[j:]:
        raise fail("unexpected '[' in address")
    if "]" in text[k:]:
        raise fail("unexpected ']' in address")
    return HostPort(host, text[last + 1 :])
