"""coderapi.goformat: Go's %q, checked against what `fmt.Sprintf("%q", s)` prints."""

from __future__ import annotations

import pytest

from coderapi.goformat import quote, quote_rune


@pytest.mark.parametrize(
    ("text", "go"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("\u0080\u009f", '"\\u0080\\u009f"'),  # C1 controls: \u, not \x
        ("\u00a0\u2028", '"\\u00a0\\u2028"'),  # spaces other than U+0020 are not printable in Go
        ("a b", '"a b"'),
        ("é.example 日本 😀", '"é.example 日本 😀"'),
        ("\u200b\ufeff", '"\\u200b\\ufeff"'),
        ("\U000e0001", '"\\U000e0001"'),
        (b"\xff.\xc3".decode("utf-8", "surrogateescape"), '"\\xff.\\xc3"'),  # invalid UTF-8 bytes
        ("'", '"\'"'),
    ],
)
def test_quote_is_gos_percent_q(text: str, go: str) -> None:
    assert quote(text) == go


def test_quote_rune_leaves_the_double_quote_to_quote() -> None:
    # Go's quoteChar (the JSON scanner's names) quotes runes in single quotes.
    assert quote_rune('"') == '"'
    assert quote_rune("\\") == "\\\\"
