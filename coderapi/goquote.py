"""Go's `%q` (`strconv.Quote`), for texts that coderd writes quoted: messages naming a value, the
`resource_metadata` of `WWW-Authenticate`, the JSON scanner's names of unexpected characters.

Written here because no Python library quotes as Go does: `repr` and `json.dumps` choose other escapes
and quotes. Python's `str.isprintable` is Go's `unicode.IsPrint` (letters, marks, numbers, punctuation,
symbols and the ASCII space). Bytes that were not UTF-8 arrive as the lone surrogates of Python's
`surrogateescape` and are written `\\xHH`, as Go writes an invalid byte.
"""

from __future__ import annotations

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
