"""The JSON bytes match Go's encoder byte for byte."""

from __future__ import annotations

import pytest

from coderapi.httpapi.jsonwire import dumps, encode


def test_compact_with_trailing_newline() -> None:
    assert encode({"a": 1, "b": [True, None]}) == b'{"a":1,"b":[true,null]}\n'


def test_keeps_insertion_order() -> None:
    assert encode({"z": 1, "a": 2}) == b'{"z":1,"a":2}\n'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<script>", '"\\u003cscript\\u003e"'),
        ("a&b", '"a\\u0026b"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("👋", '"👋"'),
        ("é", '"é"'),
        ('quote"back\\slash', '"quote\\"back\\\\slash"'),
        ("tab\tnl\n", '"tab\\tnl\\n"'),
    ],
)
def test_go_escaping(value: str, expected: str) -> None:
    assert dumps(value) == expected


def test_keys_are_escaped_too() -> None:
    assert dumps({"<k>": 1}) == '{"\\u003ck\\u003e":1}'


def test_lone_surrogate_becomes_replacement_character() -> None:
    assert encode("bad\udcff") == '"bad\ufffd"\n'.encode()


def test_big_integers_stay_exact() -> None:
    assert encode(3155760000000000000) == b"3155760000000000000\n"


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        encode(float("nan"))
