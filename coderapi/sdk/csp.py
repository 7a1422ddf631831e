"""`coderd.cspViolation`, the body browsers POST to /csp/reports, decoded as Go's encoding/json does.

Only the first JSON value is read (anything after it is ignored, as `json.Decoder.Decode` does); errors
carry Go's texts, because coderd echoes them in `detail`.
"""

from __future__ import annotations

import json
import math
import re
import string
from typing import Any

from coderapi.goformat import quote_rune

CSP_REPORT_KEY = "csp-report"
MAX_NESTING_DEPTH = 10000  # Go's encoding/json scanner limit
_WS = " \t\r\n"
_DEPTH_CHARS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


class GoJSONError(ValueError):
    """The body is not one JSON `cspViolation`; the text is Go's error."""


def _quote_char(c: str) -> str:
    """Go's `quoteChar`: how the scanner names an unexpected character."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    return f"'{quote_rune(c)}'"


def _innermost(doc: str, pos: int) -> str:
    """`{` or `[`: the container open at `pos` (the prefix is valid JSON up to there)."""
    stack: list[str] = []
    for m in _DEPTH_CHARS.finditer(doc, 0, pos):
        tok = m.group()
        if tok in "[{":
            stack.append(tok)
        elif tok in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _max_depth(doc: str) -> int:
    depth = deepest = 0
    for m in _DEPTH_CHARS.finditer(doc):
        tok = m.group()
        if tok in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif tok in "]}":
            depth -= 1
    return deepest


def _number_tail_error(doc: str, pos: int) -> GoJSONError:
    """Go's error for a number that stops right after `.` or the exponent mark at `pos` (Python took
    the digits before it for a whole number)."""
    nxt = pos + 1
    if doc[pos] == ".":
        if nxt >= len(doc):
            return GoJSONError("unexpected EOF")
        return GoJSONError(f"invalid character {_quote_char(doc[nxt])} after decimal point in numeric literal")
    if nxt < len(doc) and doc[nxt] in "+-":
        nxt += 1
    if nxt >= len(doc):
        return GoJSONError("unexpected EOF")
    return GoJSONError(f"invalid character {_quote_char(doc[nxt])} in exponent of numeric literal")


def _syntax_error(doc: str, err: json.JSONDecodeError) -> GoJSONError:
    pos = err.pos
    if pos >= len(doc):
        return GoJSONError("unexpected EOF")
    c = _quote_char(doc[pos])
    msg = err.msg
    if msg.startswith("Expecting property name"):
        return GoJSONError(f"invalid character {c} looking for beginning of object key string")
    if msg.startswith("Expecting ':'"):
        return GoJSONError(f"invalid character {c} after object key")
    if msg.startswith("Expecting ','") and doc[pos] in ".eE" and pos > 0 and doc[pos - 1].isdigit():
        return _number_tail_error(doc, pos)
    if msg.startswith("Expecting value") and doc[pos] == "-":
        # Go's scanner is inside a number after the minus sign.
        if pos + 1 >= len(doc):
            return GoJSONError("unexpected EOF")
        return GoJSONError(f"invalid character {_quote_char(doc[pos + 1])} in numeric literal")
    if msg.startswith("Expecting ','"):
        where = "object key:value pair" if _innermost(doc, pos) == "{" else "array element"
        return GoJSONError(f"invalid character {c} after {where}")
    if msg.startswith("Invalid control character"):
        return GoJSONError(f"invalid character {c} in string literal")
    if msg.startswith("Invalid \\escape"):
        # Python points at the backslash, Go at the character after it.
        return GoJSONError(f"invalid character {_quote_char(doc[pos + 1])} in string escape code")
    if msg.startswith("Invalid \\u"):
        # Python points at the `u`; Go names the first character that is not a hex digit.
        for ch in doc[pos + 1 : pos + 5]:
            if ch not in string.hexdigits:
                return GoJSONError(f"invalid character {_quote_char(ch)} in \\u hexadecimal character escape")
        return GoJSONError("unexpected EOF")
    if msg.startswith("Unterminated string"):
        return GoJSONError("unexpected EOF")
    return GoJSONError(f"invalid character {c} looking for beginning of value")


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


class _OutOfRange:
    """A number literal that does not fit a float64: Go refuses to decode it (Python would give
    `inf`, or refuse integers over 4300 digits)."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _go_number(literal: str) -> Any:
    """A JSON number as Go decodes it into `interface{}`: a float64, or an error when out of range.
    Integers stay ints for the log (a finite float64 has at most 309 integer digits)."""
    value = float(literal)
    if math.isinf(value):
        return _OutOfRange(literal)
    if any(c in literal for c in ".eE"):
        return value
    return int(literal)


def _first_out_of_range(value: Any) -> _OutOfRange | None:
    """The first out-of-range number in `value`, in document order."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _OutOfRange):
            return item
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return None


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_go_number, parse_int=_go_number)


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | _OutOfRange):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def decode_violation(body: bytes) -> dict[str, Any]:
    """The `csp-report` object of a report body (`{}` for `{}`, `null` or `{"csp-report":null}`).

    Raises GoJSONError with Go's text for invalid JSON, deep nesting, invalid UTF-8 and wrong types.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise GoJSONError(f"invalid UTF-8 in request body at byte offset {err.start}") from None
    start = len(text) - len(text.lstrip(_WS))
    if start == len(text):
        raise GoJSONError("EOF")
    if _max_depth(text) > MAX_NESTING_DEPTH:
        raise GoJSONError("exceeded max depth")
    try:
        value, _end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as err:
        raise _syntax_error(text, err) from None
    except ValueError as err:
        # A NaN / Infinity literal: Go's scanner stops at its first letter (after a minus sign, inside
        # what it took for a number).
        name = str(err)
        if name.startswith("-"):
            raise GoJSONError(f"invalid character {_quote_char(name[1])} in numeric literal") from None
        raise GoJSONError(f"invalid character {_quote_char(name[0])} looking for beginning of value") from None
    except RecursionError:
        raise GoJSONError("exceeded max depth") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GoJSONError(f"json: cannot unmarshal {_go_type(value)} into Go value of type coderd.cspViolation")
    report: Any = None
    exact = False
    for key, item in value.items():
        # Go prefers the exact field name and otherwise matches case-insensitively; the last match wins.
        if key == CSP_REPORT_KEY:
            report, exact = item, True
        elif not exact and key.lower() == CSP_REPORT_KEY:
            report = item
    if report is None:
        return {}
    if not isinstance(report, dict):
        raise GoJSONError(
            f"json: cannot unmarshal {_go_type(report)} into Go struct field cspViolation.csp-report"
            " of type map[string]interface {}"
        )
    huge = _first_out_of_range(report)
    if huge is not None:
        raise GoJSONError(
            f"json: cannot unmarshal number {huge.literal} into Go struct field cspViolation.csp-report of type float64"
        )
    return report
