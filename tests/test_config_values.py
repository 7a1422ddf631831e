"""serpent's value types: text parsing as Go does it, and the JSON/YAML/text forms."""

from __future__ import annotations

from typing import Any

import pytest

from coderapi.config import options
from coderapi.config.values import (
    BOOL,
    DURATION,
    HOST_PORT,
    INT64,
    REGEXP,
    STRING_ARRAY,
    URL_KIND,
    EnumKind,
    HostPort,
    check_wildcard_hostname,
    format_duration,
    parse_duration,
    parse_host_port,
    parse_url,
    read_csv_record,
    write_csv_record,
)
from coderapi.goquote import quote

S = 1_000_000_000
H = 3600 * S


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1s", S),
        ("1m0s", 60 * S),
        ("48h0m0s", 48 * H),
        ("876600h0m0s", 3_155_760_000_000_000_000),
        ("60d", 5_184_000_000_000_000),
        ("7d", 7 * 24 * H),
        ("1w", 7 * 24 * H),
        ("1d12h", 36 * H),
        ("1.5h", 90 * 60 * S),
        ("100ms", 100_000_000),
        ("15ms", 15_000_000),
        ("2us", 2000),
        ("2µs", 2000),
        ("-1m", -60 * S),
        ("+3s", 3 * S),
        (".5s", S // 2),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("notaduration", 'time: invalid duration "notaduration"'),
        ("10", 'time: missing unit in duration "10"'),
        ("3x", 'time: unknown unit "x" in duration "3x"'),
        ("9999999999999999999h", 'time: invalid duration "9999999999999999999h"'),
        (".s", 'time: invalid duration ".s"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.") + "$"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (S, "1s"),
        (60 * S, "1m0s"),
        (60 * 24 * H, "1440h0m0s"),
        (3_155_760_000_000_000_000, "876600h0m0s"),
        (100_000_000, "100ms"),
        (1500, "1.5µs"),
        (7, "7ns"),
        (90 * 60 * S + S // 2, "1h30m0.5s"),
        (-60 * S, "-1m0s"),
    ],
)
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_bool_parsing_is_go_parsebool() -> None:
    for text in ("1", "t", "T", "TRUE", "true", "True"):
        assert BOOL.parse(text, False) is True
    for text in ("0", "f", "F", "FALSE", "false", "False", ""):
        assert BOOL.parse(text, True) is False
    for text in ("yes", "on", "tRUE", " true"):
        with pytest.raises(ValueError, match="invalid syntax"):
            BOOL.parse(text, False)


def test_int64() -> None:
    assert INT64.parse("-12", 0) == -12
    assert INT64.parse("+7", 0) == 7
    assert INT64.parse(str(2**63 - 1), 0) == 2**63 - 1
    for text in ("", "1.0", "1_000", "0x10", " 1", str(2**63)):
        with pytest.raises(ValueError):
            INT64.parse(text, 0)


@pytest.mark.parametrize(
    ("text", "record"),
    [
        ("a,b", ["a", "b"]),
        ("foo,BAR", ["foo", "BAR"]),
        ("a, b", ["a", " b"]),
        ('"a,b",c', ["a,b", "c"]),
        ('"say ""hi""",x', ['say "hi"', "x"]),
        ("a,,b", ["a", "", "b"]),
        ("a,", ["a", ""]),
        ("\n\na,b", ["a", "b"]),
        ("a,b\nc,d", ["a", "b"]),
        ('"multi\nline",z', ["multi\nline", "z"]),
        ("a\r\n", ["a"]),
    ],
)
def test_csv_record(text: str, record: list[str]) -> None:
    assert read_csv_record(text) == record


@pytest.mark.parametrize(("text", "message"), [('a"b', "bare"), ('"abc', "extraneous"), ('"a"b', "extraneous")])
def test_csv_record_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_csv_record(text)


def test_csv_write_round_trips() -> None:
    values = ["plain", "with,comma", 'with "quote"', " leading", "", "multi\nline"]
    text = write_csv_record(values)
    assert text == 'plain,"with,comma","with ""quote"""," leading",,"multi\nline"'
    assert read_csv_record(text) == values


def test_string_array_appends_and_empty_resets() -> None:
    value = STRING_ARRAY.parse("a,b", [])
    value = STRING_ARRAY.parse("c", value)
    assert value == ["a", "b", "c"]
    assert STRING_ARRAY.parse("", value) == []


@pytest.mark.parametrize(
    ("text", "parts", "canonical"),
    [
        ("https://coder.example.com", {"scheme": "https", "host": "coder.example.com", "path": ""}, None),
        ("HTTPS://Coder.Example.com:8443/a/b?x=1#frag", {"scheme": "https", "host": "Coder.Example.com:8443"}, None),
        ("http://[::1]:3000/", {"host": "[::1]:3000", "path": "/"}, None),
        ("https://example.com/a%2Fb", {"path": "/a/b", "raw_path": "/a%2Fb"}, "https://example.com/a%2Fb"),
        ("https://example.com/a b", {"path": "/a b", "raw_path": "/a b"}, "https://example.com/a%20b"),
        ("https://example.com/?", {"force_query": True}, "https://example.com/?"),
        ("mailto:someone@example.com", {"scheme": "mailto", "opaque": "someone@example.com"}, None),
        ("file:///etc/hosts", {"scheme": "file", "host": "", "path": "/etc/hosts"}, None),
        ("relative/path", {"scheme": "", "path": "relative/path"}, None),
        ("", {}, ""),
        ("https://user:pw@example.com", {"username": "user", "password": "pw", "host": "example.com"}, None),
        ("https://example.com#a%20b", {"fragment": "a b"}, "https://example.com#a%20b"),
    ],
)
def test_url_parse(text: str, parts: dict[str, Any], canonical: str | None) -> None:
    url = parse_url(text)
    for key, want in parts.items():
        assert getattr(url, key) == want, key
    expected = text if canonical is None else canonical
    if canonical is None and text.startswith("HTTPS://"):
        expected = "https" + text[5:]
    assert str(url) == expected


@pytest.mark.parametrize(
    "text",
    ["http://a b.com/", "http://example.com:port/", "http://[::1/", "://x", "1:x", "http://x/%zz", "a\nb"],
)
def test_url_parse_errors(text: str) -> None:
    with pytest.raises(ValueError, match=r"^parse "):
        parse_url(text)


def test_url_json_never_shows_credentials() -> None:
    body = URL_KIND.to_json(parse_url("https://user:secret@example.com:8443/p?q=1#f"))
    assert list(body) == [
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
    ]
    assert body["user"] == {}
    assert "secret" not in repr(body)
    assert body["host"] == "example.com:8443"
    url = parse_url("https://example.com:8443")
    assert (url.hostname, url.port) == ("example.com", "8443")
    url = parse_url("http://[fe80::1]:80")
    assert (url.hostname, url.port) == ("fe80::1", "80")


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:3000", "127.0.0.1", "3000"),
        (":8080", "", "8080"),
        ("[::1]:443", "::1", "443"),
        ("host:", "host", ""),
    ],
)
def test_host_port(text: str, host: str, port: str) -> None:
    value = parse_host_port(text)
    assert (value.host, value.port) == (host, port)
    assert str(value) == text
    assert HOST_PORT.to_json(value) == {"host": host, "port": port}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must not be empty"),
        ("localhost", "missing port"),
        ("::1:80", "too many colons"),
        ("[::1]", "missing port"),
        ("[::1:80", "missing ']'"),
        ("a]b:80", "unexpected ']'"),
    ],
)
def test_host_port_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_host_port(text)


def test_empty_host_port_prints_empty() -> None:
    assert str(HostPort()) == ""


def test_enum_is_case_insensitive_and_kept_as_typed() -> None:
    kind = EnumKind("password", "awsiamrds")
    assert kind.parse("AWSIAMRDS", "") == "AWSIAMRDS"
    assert kind.type_name == "enum[password\\|awsiamrds]"
    assert kind.help_type() == "password|awsiamrds"
    with pytest.raises(ValueError, match=r"invalid choice: md5, should be one of \[password awsiamrds\]"):
        kind.parse("md5", "")


def test_regexp() -> None:
    assert REGEXP.parse("^dev-.*$", "") == "^dev-.*$"
    assert REGEXP.to_json("x") == {}
    assert REGEXP.option_json("x") == "x"
    with pytest.raises(ValueError, match="invalid regex expression"):
        REGEXP.parse("(unclosed", "")


def test_struct_map_from_json_or_yaml_text() -> None:
    kind = options.STRING_MAP
    assert kind.parse('{"access_type": "offline"}', {}) == {"access_type": "offline"}
    assert kind.parse("b: 2\na: x\n", {}) == {"b": "2", "a": "x"}
    assert kind.to_json({"b": "2", "a": "x"}) == {"a": "x", "b": "2"}
    assert kind.parse("", {"x": "y"}) == {}
    with pytest.raises(ValueError):
        kind.parse("[1, 2]", {})
    with pytest.raises(ValueError, match="invalid YAML"):
        kind.parse("{unclosed", {})


def test_struct_uuid_map_canonicalises() -> None:
    value = options.UUIDS_MAP.parse('{"org": ["0D9F3C6A-8E6B-4C31-9F43-2B3C8B1E4A10"]}', {})
    assert value == {"org": ["0d9f3c6a-8e6b-4c31-9f43-2b3c8b1e4a10"]}
    with pytest.raises(ValueError, match="invalid UUID"):
        options.UUIDS_MAP.parse('{"org": ["nope"]}', {})


def test_struct_list_wrapped_and_client_secret_never_in_json() -> None:
    value = options.EXTERNAL_AUTH_CONFIGS.parse(
        '[{"type": "github", "client_id": "id", "client_secret": "s3cr3t", "scopes": ["repo"], "no_refresh": true,'
        ' "unknown": 1}]',
        [],
    )
    assert value[0]["client_secret"] == "s3cr3t"
    body = options.EXTERNAL_AUTH_CONFIGS.to_json(value)
    assert list(body) == ["value"]
    item = body["value"][0]
    assert "client_secret" not in item and "extra_token_keys" not in item
    assert item["type"] == "github" and item["scopes"] == ["repo"] and item["no_refresh"] is True
    assert list(item)[:3] == ["type", "client_id", "id"]
    links = options.SUPPORT_LINKS.parse("- name: Docs\n  target: https://d\n  icon: docs\n", [])
    assert options.SUPPORT_LINKS.to_json(links) == {
        "value": [{"name": "Docs", "target": "https://d", "icon": "docs", "location": ""}]
    }
    assert options.SUPPORT_LINKS.parse("[]", links) == []


@pytest.mark.parametrize("value", ["", "*.example.com", "*--apps.coder.example.com", "*.EXAMPLE.com"])
def test_wildcard_hostname_ok(value: str) -> None:
    check_wildcard_hostname(value)


@pytest.mark.parametrize(
    "value",
    [
        "example.com",
        "*",
        "https://*.example.com",
        "*.example.com:8080",
        "foo.*.com",
        "*.example.com.",
        "*.ex ample.com",
    ],
)
def test_wildcard_hostname_refused(value: str) -> None:
    with pytest.raises(ValueError):
        check_wildcard_hostname(value)


def test_quote_is_one_line() -> None:
    assert quote('a"b\nc\\') == '"a\\"b\\nc\\\\"'


def test_duration_yaml_and_text_use_go_text() -> None:
    assert DURATION.to_yaml(60 * 24 * H) == "1440h0m0s"
    assert DURATION.to_text(0) == "0s"
    assert DURATION.to_json(60 * S) == 60 * S
