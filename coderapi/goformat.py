"""Go's text forms of values that coderd writes: `%q` (`strconv.Quote`), RFC 3339 times, float64 in
JSON and `time.Duration.String()`.

`quote` is written here because no Python library quotes as Go does: `repr` and `json.dumps` choose
other escapes and quotes. Python's `str.isprintable` is Go's `unicode.IsPrint` (letters, marks, numbers,
punctuation, symbols and the ASCII space). Bytes that were not UTF-8 arrive as the lone surrogates of
Python's `surrogateescape` and are written `\\xHH`, as Go writes an invalid byte.
"""

from __future__ import annotations

import datetime as dt
import math

_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
}
# surrogateescape maps an undecodable byte 0xHH to U+DCHH (HH >= 0x80).
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def quote_rune(c: str) -> str:
    """One character as `strconv.Quote` writes it, without the quotes (a double quote is not escaped
    here: `quote` does that)."""
    if c in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[c]
    code = ord(c)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if c.isprintable():
        return c
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def quote(s: str) -> str:
    """`fmt.Sprintf("%q", s)`: `s` in double quotes with Go's escapes, on one line."""
    return '"' + "".join('\\"' if c == '"' else quote_rune(c) for c in s) + '"'


def rfc3339(at: dt.datetime) -> str:
    """Go's `time.RFC3339Nano` in UTC: `2026-01-02T03:04:05.5Z`, fractional seconds without trailing
    zeros and left out when zero. Raises ValueError for a naive datetime."""
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return _utc_text(at, "T") + "Z"


def go_time_string(at: dt.datetime) -> str:
    """Go's `time.Time.String()` for a UTC time: `2026-01-19 08:50:57.123456 +0000 UTC`."""
    return _utc_text(at, " ") + " +0000 UTC"


def _utc_text(at: dt.datetime, sep: str) -> str:
    """Date, `sep` and time of day in UTC, fractional seconds without trailing zeros, left out when zero."""
    at = at.astimezone(dt.UTC)
    text = at.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if at.microsecond:
        text += "." + f"{at.microsecond:06d}".rstrip("0")
    return text


def rfc3339_micro(created: float) -> str:
    """A Unix time as RFC 3339 in UTC with all six fractional digits: `2026-01-02T03:04:05.500000Z`."""
    return dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def go_float(value: float) -> float | int:
    """A float64 as Go's encoding/json writes it: integral values without `.0` (`-1`, `10`).
    Returned as an int for those, which the JSON writer prints bare. Raises ValueError for NaN and
    infinities, which Go refuses to encode too."""
    if not math.isfinite(value):
        raise ValueError(f"unsupported float value {value!r}")
    if value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


# Go's time.Duration units, in nanoseconds.
NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


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
    if u < SECOND:
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            return f"{sign}{_fmt_frac(u, 3)}\u00b5s"
        return f"{sign}{_fmt_frac(u, 6)}ms"
    secs, frac = divmod(u, SECOND)
    text = _fmt_frac((secs % 60) * SECOND + frac, 9) + "s"
    mins = secs // 60
    if mins:
        text = f"{mins % 60}m{text}"
        hours = mins // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text
