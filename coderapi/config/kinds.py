"""serpent's value types (`Kind`): each turns text (a flag, an env var, a YAML scalar, a default) into a
Python value, decodes YAML nodes, and renders the value as coderapi's JSON, as YAML and as text.
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

from coderapi.config.gotext import parse_bool, parse_duration, parse_int64, read_csv_record, write_csv_record
from coderapi.config.urls import EMPTY_HOSTPORT, EMPTY_URL, parse_host_port, parse_url
from coderapi.config.yamlnodes import (
    compose_yaml,
    decode_bool,
    decode_str,
    decode_str_list,
    is_null,
    kind_name,
)
from coderapi.goformat import format_duration, quote


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
        raise ValueError(f"expected a YAML scalar, got a {kind_name(node)}")

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


class _ParsedKind(Kind):
    """A value that `read(text)` parses, `empty` (immutable) when unset."""

    empty: Any = None
    read: Callable[[str], Any]

    def zero(self) -> Any:
        return self.empty

    def parse(self, text: str, current: Any) -> Any:
        return self.read(text)


class Int64Kind(_ParsedKind):
    type_name = "int"
    empty = 0
    read = staticmethod(parse_int64)


class DurationKind(_ParsedKind):
    type_name = "duration"
    empty = 0
    read = staticmethod(parse_duration)

    def to_text(self, value: Any) -> str:
        return format_duration(value)

    to_yaml = to_text


class _TextKind(_ParsedKind):
    """A value whose YAML and coderd JSON form is its text."""

    def coderd_json(self, value: Any) -> Any:
        return str(value)

    def to_yaml(self, value: Any) -> Any:
        return str(value)


class URLKind(_TextKind):
    type_name = "url"
    empty = EMPTY_URL
    read = staticmethod(parse_url)

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


class HostPortKind(_TextKind):
    type_name = "host:port"
    empty = EMPTY_HOSTPORT
    read = staticmethod(parse_host_port)

    def to_json(self, value: Any) -> dict[str, str]:
        return {"host": value.host, "port": value.port}  # coderd's form is `host:port`, IPv6 bracketed


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
            return decode_str_list(node)
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

    coderd_json = option_json


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
    "string": decode_str,
    "strings": decode_str_list,
}


def _yaml_uuid_list(node: yaml.Node | None) -> list[str]:
    out = []
    for item in decode_str_list(node):
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
        if is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise ValueError(f"expected a mapping, got a YAML {kind_name(node)}")  # type: ignore[arg-type]
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            out[decode_str(key_node)] = self._decode_value(value_node)
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
    "str": decode_str,
    "bool": decode_bool,
    "strings": decode_str_list,
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
        if is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise ValueError(f"expected a sequence, got a YAML {kind_name(node)}")  # type: ignore[arg-type]
        by_key = {f.yaml: f for f in self.fields}
        items = []
        for item_node in node.value:
            item = self.new_item()
            if not is_null(item_node):
                if not isinstance(item_node, yaml.MappingNode):
                    raise ValueError(f"expected a mapping, got a YAML {kind_name(item_node)}")
                for key_node, value_node in item_node.value:
                    spec = by_key.get(decode_str(key_node))
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
