"""The `GET /deployment/config` body (`codersdk.DeploymentConfig`) in the seed's shapes.

`config` follows Go struct order with every key present; `options` follows declaration order. Secrets
are removed everywhere: blanked in `config`, no `value` key on a secret option or on a copy of one inside
`use_instead`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coderapi.config.loader import OPTIONS_BY_FIELD, OPTIONS_BY_NAME
from coderapi.config.options import CONFIG_FIELDS, OPTIONS, Group, Option

if TYPE_CHECKING:
    from coderapi.config.loader import DeploymentValues

# Fields of the Go structs that no option writes.
FIXED_FIELDS: dict[str, Any] = {"telemetry.trace": False}


def deployment_config_body(values: DeploymentValues) -> dict[str, Any]:
    return {"config": config_object(values), "options": [option_object(opt, values) for opt in OPTIONS]}


def config_object(values: DeploymentValues) -> dict[str, Any]:
    """`codersdk.DeploymentValues` as JSON; secret fields hold their zero value."""
    root: dict[str, Any] = {}
    for path in CONFIG_FIELDS:
        if path in FIXED_FIELDS:
            value = FIXED_FIELDS[path]
        else:
            opt = OPTIONS_BY_FIELD[path][0]
            secret = any(o.secret for o in OPTIONS_BY_FIELD[path])
            value = opt.kind.to_json(opt.kind.zero() if secret else values.get(path))
        *parents, leaf = path.split(".")
        node = root
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return root


def group_object(group: Group) -> dict[str, Any]:
    """`serpent.Group`: the parent chain inline, `parent` only when there is one."""
    body: dict[str, Any] = {}
    if group.parent is not None:
        body["parent"] = group_object(group.parent)
    body["name"] = group.name
    body["yaml"] = group.yaml
    body["description"] = group.description
    return body


def option_object(opt: Option, values: DeploymentValues, *, copy: bool = False) -> dict[str, Any]:
    """`serpent.Option`. A `use_instead` copy (`copy=True`) never carries a value source."""
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
