"""Typed option values as serpent v0.13.0 has them: text parsing, YAML decoding, and the wire forms.

Each option's value type is a `Kind`. A Kind turns text (a flag, an env var, a YAML scalar, a default)
into a Python value, decodes YAML nodes, and renders the value as coderapi's JSON, as YAML and as text.
Parsers raise `ValueError` with a one-line reason; the loader adds the option and the source.

Python values: String, Enum, YAMLConfigPath and Regexp are `str`; Bool `bool`; Int64 `int`; Duration
`int` nanoseconds; StringArray `list[str]`; Struct a `list` or `dict`; URL a `URL`; HostPort a `HostPort`.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from coderapi.goquote import quote

MAX_INT64 = (1 << 63) - 1
MIN_INT64 = -(1 << 63)

# --------------------------------------------------------------------------------------------------
# Go text helpers (`quote` is Go's %q, from coderapi.goquote)


_DIGITS = "0123456789"
_NS = 1
_US = 1000 * _NS
_MS = 1000 * _US
_S = 1000 * _MS
_MIN = 60 * _S
_H = 60 * _MIN
_DURATION_UNITS = {
    "ns": _NS,
    "us": _US,
    "\u00b5s": _US,  # micro sign
    "\u03bcs": _US,  # Greek mu
    "ms": _MS,
    "s": _S,
    "m": _MIN,
    "h": _H,
    # serpent's extra units.
    "d": 24 * _H,
    "w": 7 * 24 * _H,
}


def parse_duration(text: str) -> int:
    """Go's `time.ParseDuration` plus serpent's `d` (day) and `w` (week) units; nanoseconds."""
    orig = text
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise ValueError(f"time: invalid duration {quote(orig)}")
    total = 0
    while s:
        if not (s[0] == "." or s[0] in _DIGITS):
            raise ValueError(f"time: invalid duration {quote(orig)}")
        i = 0
        while i < len(s) and s[i] in _DIGITS:
            i += 1
        pre = i > 0
        whole = int(s[:i]) if pre else 0
        if whole > 1 << 63:
            raise ValueError(f"time: invalid duration {quote(orig)}")
        s = s[i:]
        frac, scale, post = 0, 1.0, False
        if s.startswith("."):
            s = s[1:]
            i = 0
            overflow = False
            while i < len(s) and s[i] in _DIGITS:
                if not overflow:
                    if frac > MAX_INT64 // 10:
                        overflow = True  # Go stops accumulating but keeps reading digits
                    else:
                        frac = frac * 10 + int(s[i])
                        scale *= 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise ValueError(f"time: invalid duration {quote(orig)}")
        i = 0
        while i < len(s) and not (s[i] == "." or s[i] in _DIGITS):
            i += 1
        if i == 0:
            raise ValueError(f"time: missing unit in duration {quote(orig)}")
        unit_text, s = s[:i], s[i:]
        unit = _DURATION_UNITS.get(unit_text)
        if unit is None:
            raise ValueError(f"time: unknown unit {quote(unit_text)} in duration {quote(orig)}")
        if whole > (1 << 63) // unit:
            raise ValueError(f"time: invalid duration {quote(orig)}")
        value = whole * unit
        if frac > 0:
            # Go multiplies the fraction as float64, so do we.
            value += int(float(frac) * (float(unit) / scale))
            if value > 1 << 63:
                raise ValueError(f"time: invalid duration {quote(orig)}")
        total += value
        if total > 1 << 63:
            raise ValueError(f"time: invalid duration {quote(orig)}")
    if neg:
        return -total
    if total > MAX_INT64:
        raise ValueError(f"time: invalid duration {quote(orig)}")
    return total


def _fmt_frac(v: int, prec: int) -> str:
    whole, frac = divmod(v, 10**prec)
    digits = f"{frac:0{prec}d}".rstrip("0") if prec else ""
    return f"{whole}.{digits}" if digits else str(whole)


def format_duration(ns: int) -> str:
    """Go's `time.Duration.String()`: `1h0m0s`, `1.5s`, `100ms`, `0s`."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < _S:
        if u < _US:
            return f"{sign}{u}ns"
        if u < _MS:
            return f"{sign}{_fmt_frac(u, 3)}\u00b5s"
        return f"{sign}{_fmt_frac(u, 6)}ms"
    secs, frac = divmod(u, _S)
    text = _fmt_frac((secs % 60) * _S + frac, 9) + "s"
    mins = secs // 60
    if mins:
        text = f"{mins % 60}m{text}"
        hours = mins // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def parse_bool(text: str) -> bool:
    """Go's `strconv.ParseBool`."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {quote(text)}: invalid syntax")


_INT_RE = re.compile(r"[+-]?[0-9]+")


def parse_int64(text: str) -> int:
    """Go's `strconv.ParseInt(s, 10, 64)`."""
    if not _INT_RE.fullmatch(text):
        raise ValueError(f"strconv.ParseInt: parsing {quote(text)}: invalid syntax")
    value = int(text, 10)
    if not MIN_INT64 <= value <= MAX_INT64:
        raise ValueError(f"strconv.ParseInt: parsing {quote(text)}: value out of range")
    return value


def read_csv_record(text: str) -> list[str]:
    """The first record of `text` as Go's `encoding/csv` reads it (comma, strict quotes, empty lines
    skipped, leading spaces kept)."""
    s = text.replace("\r\n", "\n")
    if s.endswith("\r"):
        s = s[:-1]
    pos, n = 0, len(s)
    while pos < n and s[pos] == "\n":
        pos += 1
    if pos >= n:
        raise ValueError("EOF")
    fields: list[str] = []
    while True:
        if pos < n and s[pos] == '"':
            pos += 1
            buf: list[str] = []
            while True:
                j = s.find('"', pos)
                if j < 0:
                    raise ValueError('extraneous or missing " in quoted-field')
                buf.append(s[pos:j])
                pos = j + 1
                if s.startswith('"', pos):
                    buf.append('"')
                    pos += 1
                    continue
                break
            fields.append("".join(buf))
            if s.startswith(",", pos):
                pos += 1
                continue
            if pos >= n or s[pos] == "\n":
                return fields
            raise ValueError('extraneous or missing " in quoted-field')
        end = pos
        while end < n and s[end] not in ",\n":
            end += 1
        field = s[pos:end]
        if '"' in field:
            raise ValueError('bare " in non-quoted field')
        fields.append(field)
        if end < n and s[end] == ",":
            pos = end + 1
            continue
        return fields


def write_csv_record(values: Sequence[str]) -> str:
    """One record as Go's `csv.Writer` writes it, without the line ending."""
    out = []
    for field in values:
        needs = field == "\\." or any(c in field for c in ',"\r\n') or (field != "" and field[0].isspace())
        out.append('"' + field.replace('"', '""') + '"' if needs else field)
    return ",".join(out)


# --------------------------------------------------------------------------------------------------
# net/url, approximated closely enough for configuration values

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


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all(c in _DIGITS for c in port[1:]))


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
        if self.raw_path and _valid_encoded(self.raw_path, _ENC_PATH):
            try:
                if _unescape(self.raw_path, _ENC_PATH) == self.path:
                    return self.raw_path
            except ValueError:
                pass
        if self.path == "*":
            return "*"
        return _escape(self.path, _ENC_PATH)

    def escaped_fragment(self) -> str:
        if self.raw_fragment and _valid_encoded(self.raw_fragment, _ENC_FRAGMENT):
            try:
                if _unescape(self.raw_fragment, _ENC_FRAGMENT) == self.fragment:
                    return self.raw_fragment
            except ValueError:
                pass
        return _escape(self.fragment, _ENC_FRAGMENT)

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
        if c in _DIGITS or c in "+-.":
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


# --------------------------------------------------------------------------------------------------
# host:port


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


# --------------------------------------------------------------------------------------------------
# YAML nodes (yaml.compose keeps each scalar's source text, as yaml.v3 nodes do)

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_YAML_TRUE = {"true", "yes", "on", "y"}
_YAML_FALSE = {"false", "no", "off", "n"}


# Text PyYAML quotes from the document in a problem (an alias or tag name); a one-character token such
# as ':' or '\\t', or a token kind such as '<scalar>', says what is wrong without revealing a value.
_YAML_QUOTED_TEXT = re.compile(r"\s*'(?!<)[^']{3,}'")


def compose_yaml(text: str) -> yaml.Node | None:
    """One YAML document as a node tree, or None when the text holds no document. A syntax error is a
    ValueError naming the problem, line and column, never PyYAML's snippet of the line: the line can
    hold a secret."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        problem = _YAML_QUOTED_TEXT.sub("", err.problem or err.context or "syntax error")
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"invalid YAML: {' '.join(problem.split())}{where}") from None
    except yaml.reader.ReaderError as err:
        raise ValueError(f"invalid YAML: a character YAML does not allow at offset {err.position}") from None
    except yaml.YAMLError:
        raise ValueError("invalid YAML") from None


def _is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG)


def _kind_name(node: yaml.Node) -> str:
    return {yaml.ScalarNode: "scalar", yaml.SequenceNode: "sequence", yaml.MappingNode: "mapping"}.get(
        type(node), "node"
    )


def _yaml_str(node: yaml.Node | None) -> str:
    if _is_null(node):
        return ""
    assert node is not None
    if not isinstance(node, yaml.ScalarNode):
        raise ValueError(f"cannot decode a YAML {_kind_name(node)} into a string")
    return str(node.value)


def _yaml_bool(node: yaml.Node | None) -> bool:
    if _is_null(node):
        return False
    assert node is not None
    if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
        return str(node.value).lower() in _YAML_TRUE
    raise ValueError(f"cannot decode YAML {quote(str(getattr(node, 'value', '')))} into a bool")


def _yaml_str_list(node: yaml.Node | None) -> list[str]:
    if _is_null(node):
        return []
    assert node is not None
    if not isinstance(node, yaml.SequenceNode):
        raise ValueError(f"cannot decode a YAML {_kind_name(node)} into a list of strings")
    return [_yaml_str(item) for item in node.value]


# --------------------------------------------------------------------------------------------------
# Kinds


class Kind:
    """One serpent value type."""

    type_name = ""
    #: A bare `--flag` means this text (pflag's NoOptDefVal); None: the flag needs a value.
    no_opt_value: str | None = None

    def zero(self) -> Any:
        raise NotImplementedError

    def parse(self, text: str, current: Any) -> Any:
        """`Set(text)`: the new value, given the current one (StringArray appends)."""
        raise NotImplementedError

    def from_yaml(self, node: yaml.Node, current: Any) -> Any:
        """The value a YAML node sets. Scalars go through `parse`, as serpent does."""
        if isinstance(node, yaml.ScalarNode):
            return self.parse(str(node.value), current)
        raise ValueError(f"expected a YAML scalar, got a {_kind_name(node)}")

    def to_json(self, value: Any) -> Any:
        """coderapi's JSON form in `config` and `options[].value`."""
        return value

    def option_json(self, value: Any) -> Any:
        """The JSON form in `options[].value` (differs only for Regexp)."""
        return self.to_json(value)

    def coderd_json(self, value: Any) -> Any:
        """coderd's own JSON form, the same in `config` and `options[].value` (the `coderd` wire form)."""
        return value

    def to_yaml(self, value: Any) -> Any:
        """Plain data for `--write-config`."""
        return value

    def to_text(self, value: Any) -> str:
        """serpent's `String()`."""
        return str(value)

    def help_type(self) -> str:
        return self.type_name


class StringKind(Kind):
    type_name = "string"

    def zero(self) -> str:
        return ""

    def parse(self, text: str, current: Any) -> str:
        return text


class AutoOrIntKind(StringKind):
    """A string option that is `auto` or a whole number (`--postgres-conn-max-idle`): coder refuses any
    other value when it starts, so the loader refuses it from every source, YAML included."""

    def parse(self, text: str, current: Any) -> str:
        if text != "auto" and not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ValueError('must be "auto" or a number')
        return text


class YAMLConfigPathKind(StringKind):
    type_name = "yaml-config-path"


class BoolKind(Kind):
    type_name = "bool"
    no_opt_value = "true"

    def zero(self) -> bool:
        return False

    def parse(self, text: str, current: Any) -> bool:
        return False if text == "" else parse_bool(text)

    def to_text(self, value: Any) -> str:
        return "true" if value else "false"


class Int64Kind(Kind):
    type_name = "int"

    def zero(self) -> int:
        return 0

    def parse(self, text: str, current: Any) -> int:
        return parse_int64(text)


class DurationKind(Kind):
    type_name = "duration"

    def zero(self) -> int:
        return 0

    def parse(self, text: str, current: Any) -> int:
        return parse_duration(text)

    def to_yaml(self, value: Any) -> str:
        return format_duration(value)

    def to_text(self, value: Any) -> str:
        return format_duration(value)


_URL_JSON_KEYS = (
    "scheme",
    "host",
    "path",
    "rawPath",
    "rawQuery",
    "fragment",
    "rawFragment",
    "opaque",
    "forceQuery",
    "omitHost",
    "user",
)


class URLKind(Kind):
    type_name = "url"

    def zero(self) -> URL:
        return EMPTY_URL

    def parse(self, text: str, current: Any) -> URL:
        return parse_url(text)

    def to_json(self, value: Any) -> dict[str, Any]:
        # Credentials are never echoed: `user` is always {}.
        return {
            "scheme": value.scheme,
            "host": value.host,
            "path": value.path,
            "rawPath": value.raw_path,
            "rawQuery": value.raw_query,
            "fragment": value.fragment,
            "rawFragment": value.raw_fragment,
            "opaque": value.opaque,
            "forceQuery": value.force_query,
            "omitHost": value.omit_host,
            "user": {},
        }

    def coderd_json(self, value: Any) -> str:
        # serpent's URL.MarshalJSON: the canonical text, "" when unset; without the user info, which
        # coderd would echo: credentials are never echoed, as `user` is always {} in the reference form.
        if value.username is not None:
            value = dataclasses.replace(value, username=None, password=None)
        return str(value)

    def to_yaml(self, value: Any) -> str:
        return str(value)


class HostPortKind(Kind):
    type_name = "host:port"

    def zero(self) -> HostPort:
        return EMPTY_HOSTPORT

    def parse(self, text: str, current: Any) -> HostPort:
        return parse_host_port(text)

    def to_json(self, value: Any) -> dict[str, str]:
        return {"host": value.host, "port": value.port}

    def coderd_json(self, value: Any) -> str:
        return str(value)  # `host:port`, IPv6 bracketed, "" when unset

    def to_yaml(self, value: Any) -> str:
        return str(value)


class StringArrayKind(Kind):
    type_name = "string-array"

    def zero(self) -> list[str]:
        return []

    def parse(self, text: str, current: Any) -> list[str]:
        if text == "":
            return []
        return [*current, *read_csv_record(text)]

    def from_yaml(self, node: yaml.Node, current: Any) -> list[str]:
        if isinstance(node, yaml.SequenceNode):
            return _yaml_str_list(node)
        return super().from_yaml(node, current)  # type: ignore[no-any-return]

    def to_json(self, value: Any) -> list[str]:
        return list(value)

    def coderd_json(self, value: Any) -> list[str] | None:
        # Empty input resets serpent's StringArray to nil, which Go writes as null.
        return list(value) if value else None

    def to_yaml(self, value: Any) -> list[str]:
        return list(value)

    def to_text(self, value: Any) -> str:
        return write_csv_record(value)


class EnumKind(StringKind):
    """A string restricted to choices, checked case-insensitively and stored as typed."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.type_name = "enum[" + "\\|".join(choices) + "]"

    def parse(self, text: str, current: Any) -> str:
        if any(text.lower() == c.lower() for c in self.choices):
            return text
        raise ValueError(f"invalid choice: {text}, should be one of [{' '.join(self.choices)}]")

    def help_type(self) -> str:
        return "|".join(self.choices)


class RegexpKind(Kind):
    """A regular expression, kept as its pattern (Python's `re` stands in for RE2)."""

    type_name = "regexp"

    def zero(self) -> str:
        return ""

    def parse(self, text: str, current: Any) -> str:
        try:
            re.compile(text)
        except re.error as err:
            raise ValueError(f"invalid regex expression: {err}") from None
        return text

    def to_json(self, value: Any) -> dict[str, Any]:
        # The seed shows the compiled regexp as an empty object in `config`.
        return {}

    def option_json(self, value: Any) -> str:
        return str(value)

    def coderd_json(self, value: Any) -> str:
        return str(value)


class StructKind(Kind):
    """serpent's Struct[T]: text input is YAML (or JSON) decoded into T."""

    def __init__(self, go_type: str) -> None:
        self.type_name = f"struct[{go_type}]"

    def decode(self, node: yaml.Node | None) -> Any:
        raise NotImplementedError

    def parse(self, text: str, current: Any) -> Any:
        return self.decode(compose_yaml(text))

    def from_yaml(self, node: yaml.Node, current: Any) -> Any:
        return self.decode(node)

    def to_text(self, value: Any) -> str:
        if not value:
            return ""
        return yaml.safe_dump(self.to_yaml(value), sort_keys=False, allow_unicode=True, default_flow_style=False)


_MAP_VALUE_DECODERS: dict[str, Callable[[yaml.Node | None], Any]] = {
    "string": _yaml_str,
    "strings": _yaml_str_list,
}


def _yaml_uuid_list(node: yaml.Node | None) -> list[str]:
    out = []
    for item in _yaml_str_list(node):
        try:
            out.append(str(uuid.UUID(item)))
        except ValueError:
            raise ValueError(f"invalid UUID {quote(item)}") from None
    return out


_MAP_VALUE_DECODERS["uuids"] = _yaml_uuid_list


class StructMapKind(StructKind):
    """A map-typed Struct (`map[string]string`, `map[string][]string`, `map[string][]uuid.UUID`);
    in JSON the bare object with sorted keys."""

    def __init__(self, go_type: str, values: str) -> None:
        super().__init__(go_type)
        self._decode_value = _MAP_VALUE_DECODERS[values]

    def zero(self) -> dict[str, Any]:
        return {}

    def decode(self, node: yaml.Node | None) -> dict[str, Any]:
        if _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise ValueError(f"expected a mapping, got a YAML {_kind_name(node)}")  # type: ignore[arg-type]
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            out[_yaml_str(key_node)] = self._decode_value(value_node)
        return out

    def to_json(self, value: Any) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in sorted(value.items())}

    def coderd_json(self, value: Any) -> dict[str, Any]:
        # The bare map, keys sorted as Go writes maps. Every map option has a default (`{}` at least),
        # so the map is never nil and never null.
        return {k: (list(v) or None if isinstance(v, list) else v) for k, v in sorted(value.items())}

    def to_yaml(self, value: Any) -> dict[str, Any]:
        return self.to_json(value)


@dataclass(frozen=True)
class StructField:
    yaml: str
    kind: str  # "str", "bool" or "strings"
    in_json: bool = True
    # Left out of coderd's JSON at its zero value (`json:",omitempty"`); the reference form keeps it.
    omitempty: bool = False


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


_FIELD_DECODERS: dict[str, Callable[[yaml.Node | None], Any]] = {
    "str": _yaml_str,
    "bool": _yaml_bool,
    "strings": _yaml_str_list,
}
_FIELD_ZERO: dict[str, Callable[[], Any]] = {"str": str, "bool": bool, "strings": list}


class StructListKind(StructKind):
    """A list-typed Struct of objects (`[]LinkConfig`, `[]ExternalAuthConfig`); in JSON wrapped as
    `{"value": [...]}`. Fields marked `in_json=False` (client secrets) never reach JSON."""

    def __init__(self, go_type: str, fields: Sequence[StructField]) -> None:
        super().__init__(go_type)
        self.fields = tuple(fields)

    def zero(self) -> list[dict[str, Any]]:
        return []

    def new_item(self) -> dict[str, Any]:
        return {f.yaml: _FIELD_ZERO[f.kind]() for f in self.fields}

    def decode(self, node: yaml.Node | None) -> list[dict[str, Any]]:
        if _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise ValueError(f"expected a sequence, got a YAML {_kind_name(node)}")  # type: ignore[arg-type]
        by_key = {f.yaml: f for f in self.fields}
        items = []
        for item_node in node.value:
            item = self.new_item()
            if not _is_null(item_node):
                if not isinstance(item_node, yaml.MappingNode):
                    raise ValueError(f"expected a mapping, got a YAML {_kind_name(item_node)}")
                for key_node, value_node in item_node.value:
                    spec = by_key.get(_yaml_str(key_node))
                    if spec is not None:  # yaml.v3 ignores unknown fields
                        item[spec.yaml] = _FIELD_DECODERS[spec.kind](value_node)
            items.append(item)
        return items

    def to_json(self, value: Any) -> dict[str, Any]:
        json_fields = [f for f in self.fields if f.in_json]
        return {"value": [{f.yaml: _copy(item[f.yaml]) for f in json_fields} for item in value]}

    def coderd_json(self, value: Any) -> list[dict[str, Any]] | None:
        # The bare slice (null when nil: an empty sequence decodes to nil); nil arrays inside are null.
        if not value:
            return None
        out = []
        for item in value:
            entry: dict[str, Any] = {}
            for f in self.fields:
                if not f.in_json or (f.omitempty and not item[f.yaml]):
                    continue
                entry[f.yaml] = (list(item[f.yaml]) or None) if f.kind == "strings" else item[f.yaml]
            out.append(entry)
        return out

    def to_yaml(self, value: Any) -> list[dict[str, Any]]:
        return [{f.yaml: item[f.yaml] for f in self.fields} for item in value]


class Validated(Kind):
    """serpent's Validator wrapper: the check runs on flag, env and default input; YAML decodes straight
    into the wrapped value and skips it."""

    def __init__(self, inner: Kind, check: Callable[[Any], None]) -> None:
        self.inner = inner
        self.check = check
        self.type_name = inner.type_name
        self.no_opt_value = inner.no_opt_value

    def zero(self) -> Any:
        return self.inner.zero()

    def parse(self, text: str, current: Any) -> Any:
        value = self.inner.parse(text, current)
        self.check(value)
        return value

    def from_yaml(self, node: yaml.Node, current: Any) -> Any:
        return self.inner.from_yaml(node, current)

    def to_json(self, value: Any) -> Any:
        return self.inner.to_json(value)

    def option_json(self, value: Any) -> Any:
        return self.inner.option_json(value)

    def coderd_json(self, value: Any) -> Any:
        return self.inner.coderd_json(value)

    def to_yaml(self, value: Any) -> Any:
        return self.inner.to_yaml(value)

    def to_text(self, value: Any) -> str:
        return self.inner.to_text(value)

    def help_type(self) -> str:
        return self.inner.help_type()


STRING = StringKind()
AUTO_OR_INT = AutoOrIntKind()
BOOL = BoolKind()
INT64 = Int64Kind()
DURATION = DurationKind()
URL_KIND = URLKind()
HOST_PORT = HostPortKind()
STRING_ARRAY = StringArrayKind()
REGEXP = RegexpKind()
YAML_CONFIG_PATH = YAMLConfigPathKind()


# --------------------------------------------------------------------------------------------------
# The checks of the four Validator-wrapped options

_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def check_wildcard_hostname(value: str) -> None:
    """coderd's hostname-pattern rules for the wildcard access URL: `*.example.com`,
    `*--suffix.example.com`; empty is allowed."""
    if value == "":
        return
    pattern = value.lower()
    if "http:" in pattern or "https:" in pattern:
        raise ValueError(f"hostname pattern must not contain a scheme: {quote(pattern)}")
    if ":" in pattern:
        raise ValueError(f"hostname pattern must not contain a port: {quote(pattern)}")
    if pattern.startswith(".") or pattern.endswith("."):
        raise ValueError(f"hostname pattern must not start or end with a period: {quote(pattern)}")
    if "." not in pattern:
        raise ValueError(f"hostname pattern must contain at least two labels/segments: {quote(pattern)}")
    if pattern.count("*") != 1:
        raise ValueError(f"hostname pattern must contain exactly one asterisk: {quote(pattern)}")
    if not pattern.startswith("*"):
        raise ValueError(f"hostname pattern must only contain an asterisk at the beginning: {quote(pattern)}")
    for i, label in enumerate(pattern.split(".")):
        if i == 0:
            label = "a" + label[1:]  # the wildcard stands for at least one valid character
        if not _HOST_LABEL.fullmatch(label) or len(label) > 63:
            raise ValueError(f"invalid hostname label in pattern {quote(pattern)}")


AGENT_STATS_LABELS = ("agent_name", "template_name", "username", "workspace_name")


def check_aggregation_labels(values: list[str]) -> None:
    for label in values:
        if label not in AGENT_STATS_LABELS:
            raise ValueError(f"label {quote(label)} is not valid, accepted labels: {', '.join(AGENT_STATS_LABELS)}")


PROVISIONER_TYPES = ("terraform", "echo")


def check_provisioner_types(values: list[str]) -> None:
    for value in values:
        if value not in PROVISIONER_TYPES:
            raise ValueError(f"provisioner type {quote(value)} is not supported")


def check_positive(value: int) -> None:
    if value <= 0:
        raise ValueError("must be greater than zero")
