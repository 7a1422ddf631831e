"""The `GET /deployment/config` body (`codersdk.DeploymentConfig`) in either wire form.

`reference` (the seed's shapes): `config` follows Go struct order with every key present; `options`
follows declaration order, every key the seed shows present. `coderd` (coderd's real bytes, read by the Go
SDK and the dashboard): the same order, values in serpent's own JSON forms (`Kind.coderd_json`), Go's
omitempty and field names. Secrets are removed in both: blanked in `config`, no `value` key on a secret
option or on a copy of one inside `use_instead`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from coderapi.config.kinds import Kind
from coderapi.config.options import (
    CODERD_KEYS,
    CODERD_OMITEMPTY_FIELDS,
    CONFIG_FIELDS,
    OPTIONS,
    OPTIONS_BY_FIELD,
    OPTIONS_BY_NAME,
    Group,
    Option,
)
from coderapi.config.settings import WIRE_FORMAT_CODERD

# Fields of the Go structs that no option writes.
FIXED_FIELDS: dict[str, Any] = {"telemetry.trace": False}


class Values(Protocol):
    """What the body is written from (the loader's DeploymentValues)."""

    def get(self, field: str) -> Any:
        """The value at a `config` path."""

    def default(self, name: str) -> str:
        """The default text of the option called `name`."""

    def source(self, name: str) -> str:
        """How the option called `name` was set."""


def deployment_config_body(values: Values, form: str) -> dict[str, Any]:
    coderd = form == WIRE_FORMAT_CODERD
    option = _coderd_option_object if coderd else option_object
    return {"config": config_object(values, coderd=coderd), "options": [option(opt, values) for opt in OPTIONS]}


def _json(kind: Kind, coderd: bool) -> Callable[[Any], Any]:
    return kind.coderd_json if coderd else kind.to_json


def config_object(values: Values, *, coderd: bool = False) -> dict[str, Any]:
    """`codersdk.DeploymentValues` as JSON; secret fields hold their zero value."""
    root: dict[str, Any] = {}
    for path in CONFIG_FIELDS:
        if path in FIXED_FIELDS:
            value = FIXED_FIELDS[path]
        else:
            opt = OPTIONS_BY_FIELD[path][0]
            secret = any(o.secret for o in OPTIONS_BY_FIELD[path])
            value = _json(opt.kind, coderd)(opt.kind.zero() if secret else values.get(path))
        if coderd and path in CODERD_OMITEMPTY_FIELDS and value in (False, "", 0, None):
            continue  # `0 == False`: every zero scalar; arrays are None when empty
        put_at(root, path, value, coderd=coderd)
    return root


def put_at(root: dict[str, Any], path: str, value: Any, *, coderd: bool) -> None:
    """Set `value` at the `config` path `path` in the nested `root` (under coderd's keys when `coderd`)."""
    *parents, leaf = (CODERD_KEYS.get(path, path) if coderd else path).split(".")
    node = root
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def group_object(group: Group) -> dict[str, Any]:
    """`serpent.Group`: the parent chain inline, `parent` only when there is one."""
    body: dict[str, Any] = {}
    if group.parent is not None:
        body["parent"] = group_object(group.parent)
    body["name"] = group.name
    body["yaml"] = group.yaml
    body["description"] = group.description
    return body


def option_object(opt: Option, values: Values, *, copy: bool = False) -> dict[str, Any]:
    """`serpent.Option`, reference form. A `use_instead` copy (`copy=True`) never carries a value source."""
    body: dict[str, Any] = {
        "name": opt.name,
        "description": opt.description,
        "required": False,
        "flag": opt.flag,
        "flag_shorthand": opt.shorthand,
        "env": opt.env,
        "yaml": opt.yaml,
        "default": values.default(opt.name),
    }
    if not opt.secret:
        body["value"] = opt.kind.option_json(values.get(opt.field))
    body["annotations"] = {key: "true" for key in sorted(opt.annotations)}
    if opt.group is not None:
        body["group"] = group_object(opt.group)
    body["use_instead"] = [option_object(OPTIONS_BY_NAME[name], values, copy=True) for name in opt.use_instead]
    body["hidden"] = opt.hidden
    body["value_source"] = "" if copy else values.source(opt.name)
    return body


def _omit_empty(body: dict[str, Any]) -> dict[str, Any]:
    """Go's omitempty on every key of a serpent struct: falsy values dropped (`value` is handled apart)."""
    return {key: value for key, value in body.items() if value or key == "value"}


def _coderd_option_object(opt: Option, values: Values, *, copy: bool = False) -> dict[str, Any]:
    """`serpent.Option` as coderd writes it: every key omitempty except `value`, which is left out only
    for a secret option (and, beyond coderd, for a `use_instead` copy of one)."""
    body = option_object(opt, values, copy=copy)
    if "value" in body:
        body["value"] = opt.kind.coderd_json(values.get(opt.field))
    if opt.group is not None:
        body["group"] = _coderd_group_object(opt.group)
    body["use_instead"] = [_coderd_option_object(OPTIONS_BY_NAME[n], values, copy=True) for n in opt.use_instead]
    return _omit_empty(body)


def _coderd_group_object(group: Group) -> dict[str, Any]:
    body = group_object(group)
    if group.parent is not None:
        body["parent"] = _coderd_group_object(group.parent)
    return _omit_empty(body)
