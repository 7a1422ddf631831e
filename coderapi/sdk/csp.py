"""`coderd.cspViolation`, the body browsers POST to /csp/reports, decoded as Go's encoding/json does.

Only the first JSON value is read (anything after it is ignored, as `json.Decoder.Decode` does); errors
carry Go's texts, because coderd echoes them in `detail`.
"""

from __future__ import annotations

import json
import re
from typing import Any

CSP_REPORT_KEY = "csp-report"
MAX_NESTING_DEPTH = 10000  # Go's encoding/json scanner limit
_WS = " \t\r\n"
# Python's decoder allows these, Go's does not.
_NON_JSON_CONSTANTS = ("NaN", "Infinity", "-Infinity")
_DEPTH_CHARS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


class GoJSONError(ValueError):
    """The body is not one JSON `cspViolation`; the text is Go's error."""


def _quote_char(c: str) -> str:
    """Go's `quoteChar`: how the scanner names an unexpected character."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    inner = json.dumps(c, ensure_ascii=False)[1:-1]
    return f"'{inner}'"


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
    if msg.startswith("Expecting ','"):
        where = "object key:value pair" if _innermost(doc, pos) == "{" else "array element"
        return GoJSONError(f"invalid character {c} after {where}")
    if msg.startswith("Invalid control character"):
        return GoJSONError(f"invalid character {c} in string literal")
    if msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\u"):
        return GoJSONError(f"invalid character {c} in string escape code")
    if msg.startswith("Unterminated string"):
        return GoJSONError("unexpected EOF")
    return GoJSONError(f"invalid character {c} looking for beginning of value")


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
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
        # A NaN / Infinity literal: Go's scanner stops at its first letter.
        raise GoJSONError(f"invalid character {_quote_char(str(err)[0])} looking for beginning of value") from None
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
    return report
