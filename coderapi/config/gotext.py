"""Go's text parsers as configuration input needs them: `time.ParseDuration` (with serpent's `d` and
`w`), `strconv.ParseBool`, `strconv.ParseInt` and `encoding/csv` records.

Parsers raise `ValueError` with Go's one-line reason.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from coderapi.goformat import HOUR, MICROSECOND, MILLISECOND, MINUTE, NANOSECOND, SECOND, quote

MAX_INT64 = (1 << 63) - 1
MIN_INT64 = -(1 << 63)

_DIGITS = string.digits
_DURATION_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
    # serpent's extra units.
    "d": 24 * HOUR,
    "w": 7 * 24 * HOUR,
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
