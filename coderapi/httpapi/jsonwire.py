"""JSON bytes exactly as coderd's `httpapi.Write` produces them.

Written by hand because no JSON library gives Go's encoder output: compact separators, raw UTF-8,
but `<`, `>`, `&`, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD, and one trailing newline.
"""

from __future__ import annotations

import json
import re
from typing import Any

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_SURROGATE = re.compile("[\ud800-\udfff]")
_NEEDS_ESCAPE = re.compile("[<>&\u2028\u2029]")


def dumps(obj: Any) -> str:
    """The JSON text of `obj` with Go's escaping, without the trailing newline."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if _NEEDS_ESCAPE.search(text):
        text = text.translate(_GO_ESCAPES)
    return text


def encode(obj: Any) -> bytes:
    """The response body for `obj`: Go-escaped JSON plus one newline, as UTF-8."""
    text = dumps(obj) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (from undecodable input echoed back) become U+FFFD, as Go writes invalid UTF-8.
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")
