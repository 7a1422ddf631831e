"""`codersdk.DeploymentConfig`: the body of GET /deployment/config, as marshmallow schemas.

The `config` object (`codersdk.DeploymentValues`) is generated from the option table, the one source of
its fields and their types (`coderapi.config.wire` writes the body from the same table), so the
description can never drift from what is served. `options` is a list of `serpent.Option`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from marshmallow import Schema, fields

from coderapi.config import kinds
from coderapi.config.options import CONFIG_FIELDS, OPTIONS_BY_FIELD
from coderapi.config.settings import WIRE_FORMAT_CODERD, WIRE_FORMAT_REFERENCE
from coderapi.config.wire import FIXED_FIELDS, put_at


class URL(Schema):
    """`serpent.URL` in the seed's object form; `user` is always `{}`."""

    class Meta:
        ordered = True

    scheme = fields.String()
    opaque = fields.String()
    user = fields.Nested(Schema.from_dict({}, name="url.Userinfo"))
    host = fields.String()
    path = fields.String()
    rawPath = fields.String()
    omitHost = fields.Boolean()
    forceQuery = fields.Boolean()
    rawQuery = fields.String()
    fragment = fields.String()
    rawFragment = fields.String()


class HostPort(Schema):
    """`serpent.HostPort` in the seed's object form."""

    host = fields.String()
    port = fields.String()


class Regexp(Schema):
    """`serpent.Regexp`: written as `{}`; the pattern is in the option's `value`."""


class Group(Schema):
    """`serpent.Group` with its parent chain inline."""

    name = fields.String()
    yaml = fields.String()
    description = fields.String()
    parent = fields.Nested(lambda: Group())


class Option(Schema):
    """`serpent.Option`. `value` is any JSON value (the option's type decides)."""

    name = fields.String()
    description = fields.String()
    required = fields.Boolean()
    flag = fields.String()
    flag_shorthand = fields.String()
    env = fields.String()
    yaml = fields.String()
    default = fields.String()
    value = fields.Raw()
    annotations = fields.Dict(keys=fields.String(), values=fields.String())
    group = fields.Nested(Group)
    use_instead = fields.List(fields.Nested(lambda: Option()))
    hidden = fields.Boolean()
    value_source = fields.String()


_STRUCT_FIELD_TYPES = {"str": fields.String, "bool": fields.Boolean}


def _struct_item(kind: kinds.StructListKind, *, coderd: bool = False) -> type[Schema]:
    attrs: dict[str, fields.Field[Any]] = {}
    for f in kind.fields:
        if not f.in_json:
            continue
        if f.kind == "strings":
            attrs[f.yaml] = fields.List(fields.String(), allow_none=coderd)
        else:
            attrs[f.yaml] = _STRUCT_FIELD_TYPES[f.kind]()
    return Schema.from_dict(attrs, name=kind.type_name)


def coderd_field_for(kind: kinds.Kind) -> fields.Field[Any]:
    """The marshmallow field of a value of this option type in coderd's JSON form (`Kind.coderd_json`):
    URL, HostPort and Regexp as strings, Struct values bare, nil arrays and slices as null."""
    if isinstance(kind, kinds.Validated):
        return coderd_field_for(kind.inner)
    if isinstance(kind, kinds.URLKind | kinds.HostPortKind | kinds.RegexpKind):
        return fields.String()
    if isinstance(kind, kinds.StringArrayKind):
        return fields.List(fields.String(), allow_none=True)
    if isinstance(kind, kinds.StructListKind):
        return fields.List(fields.Nested(_struct_item(kind, coderd=True)), allow_none=True)
    return field_for(kind)


def field_for(kind: kinds.Kind) -> fields.Field[Any]:
    """The marshmallow field of a value of this option type, in its `config` JSON form."""
    if isinstance(kind, kinds.Validated):
        return field_for(kind.inner)
    if isinstance(kind, kinds.BoolKind):
        return fields.Boolean()
    if isinstance(kind, kinds.Int64Kind | kinds.DurationKind):
        return fields.Integer()
    if isinstance(kind, kinds.URLKind):
        return fields.Nested(URL)
    if isinstance(kind, kinds.HostPortKind):
        return fields.Nested(HostPort)
    if isinstance(kind, kinds.StringArrayKind):
        return fields.List(fields.String())
    if isinstance(kind, kinds.RegexpKind):
        return fields.Nested(Regexp)
    if isinstance(kind, kinds.StructListKind):
        return fields.Nested(Schema.from_dict({"value": fields.List(fields.Nested(_struct_item(kind)))}))
    if isinstance(kind, kinds.StructMapKind):
        return fields.Dict(keys=fields.String())
    if isinstance(kind, kinds.StringKind):
        return fields.String()
    raise TypeError(f"no schema field for option type {kind.type_name!r}")


_FIXED_FIELD_TYPES = {bool: fields.Boolean, int: fields.Integer, str: fields.String}


@cache
def deployment_values_schema(form: str = WIRE_FORMAT_REFERENCE) -> type[Schema]:
    """`codersdk.DeploymentValues` in wire form `form`: one nested schema per struct, fields in Go struct
    order."""
    coderd = form == WIRE_FORMAT_CODERD
    tree: dict[str, Any] = {}
    for path in CONFIG_FIELDS:
        if path in FIXED_FIELDS:
            field: fields.Field[Any] = _FIXED_FIELD_TYPES[type(FIXED_FIELDS[path])]()
        else:
            kind = OPTIONS_BY_FIELD[path][0].kind
            field = coderd_field_for(kind) if coderd else field_for(kind)
        put_at(tree, path, field, coderd=coderd)

    def build(node: dict[str, Any], name: str) -> type[Schema]:
        attrs = {
            key: fields.Nested(build(value, f"{name}.{key}")) if isinstance(value, dict) else value
            for key, value in node.items()
        }
        return Schema.from_dict(attrs, name=name)

    return build(tree, "DeploymentValues")


@cache
def deployment_config_schema(form: str = WIRE_FORMAT_REFERENCE) -> type[Schema]:
    """`codersdk.DeploymentConfig`: `{"config": DeploymentValues, "options": [Option]}`."""
    return Schema.from_dict(
        {"config": fields.Nested(deployment_values_schema(form)), "options": fields.List(fields.Nested(Option))},
        name="DeploymentConfig",
    )
