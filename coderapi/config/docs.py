"""Text generated from the option table: `coderapi server --help`, `--write-config` YAML, and
docs/options.md."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from coderapi.config.options import GROUPS, OPTIONS, OPTIONS_BY_NAME, Group, Option

if TYPE_CHECKING:
    from coderapi.config.loader import DeploymentValues

HELP_WIDTH = 80
HELP_INDENT = 10
# What help and docs show for defaults that depend on the machine.
CACHE_DIR_DOC_DEFAULT = "~/.cache/coder"


def _default_text(opt: Option, environ: Mapping[str, str] | None) -> str:
    if opt.default_from is not None:
        return opt.default_from(environ) if environ is not None else CACHE_DIR_DOC_DEFAULT
    return opt.default or ""


def _use_instead_text(opt: Option) -> str:
    """serpent's useInstead: `--a`, `--a and --b`, `--a, --b and --c`."""
    flags = ["--" + OPTIONS_BY_NAME[name].flag for name in opt.use_instead]
    return flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " and " + flags[-1]


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, width=width, break_long_words=False, break_on_hyphens=False) or [""])
    return lines


def help_text(environ: Mapping[str, str] | None = None) -> str:
    """Every visible option, grouped like `coder server --help`: ungrouped options first, then groups
    by full name, options by name; each with shorthand, flag, type, env var, default, description and
    YAML key. `environ` fills in machine-dependent defaults (the cache directory)."""
    sections: dict[str, tuple[Group | None, list[Option]]] = {"": (None, [])}
    for opt in sorted((o for o in OPTIONS if not o.hidden), key=lambda o: o.name):
        key = opt.group.full_name if opt.group else ""
        sections.setdefault(key, (opt.group, []))[1].append(opt)
    out: list[str] = []
    for key in sorted(sections):
        group, opts = sections[key]
        if not opts:
            continue
        out.append(f"{key.upper()} OPTIONS:" if key else "OPTIONS:")
        if group is not None and group.description:
            out.extend(_wrap(group.description.replace("\n", ""), HELP_WIDTH))
        for opt in opts:
            out.append("")
            head = f"  -{opt.shorthand}, --{opt.flag}" if opt.shorthand else f"      --{opt.flag}"
            head += f" {opt.kind.help_type()}"
            if opt.env:
                head += f", ${opt.env}"
            default = _default_text(opt, environ)
            if default:
                head += f" (default: {default})"
            out.append(head)
            pad = " " * HELP_INDENT
            body = opt.description
            if opt.use_instead:
                body += f"\nDEPRECATED: Use {_use_instead_text(opt)} instead."
            if opt.yaml_path:
                body += f"\nYAML: {opt.yaml_path}"
            out.extend(pad + line if line else "" for line in _wrap(body, HELP_WIDTH - HELP_INDENT))
        out.append("")
    return "\n".join(out)


class _IndentedDumper(yaml.SafeDumper):
    """Block sequences indented under their key, as yaml.v3 writes them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _yaml_value(key: str, value: Any) -> list[str]:
    text = yaml.dump(
        {key: value},
        Dumper=_IndentedDumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        indent=2,
        width=2**31 - 1,
    )
    return text.rstrip("\n").split("\n")


def _comment(text: str) -> list[str]:
    return ["# " + line if line else "#" for line in _wrap(text, HELP_WIDTH)]


def write_config_yaml(values: DeploymentValues) -> str:
    """`--write-config`: every option with a YAML key (hidden ones too; secrets have none), nested under
    the group YAML names, each preceded by its description and `(default: …, type: …)` as comments."""
    # Build group -> entries in first-appearance order, like serpent's deepMapNode.
    root: dict[Group | None, list[Any]] = {None: []}
    children: dict[Group | None, list[Group]] = {None: []}
    for opt in OPTIONS:
        if not opt.yaml:
            continue
        chain = opt.group.ancestry if opt.group else ()
        parent: Group | None = None
        for group in chain:
            if group not in root:
                root[group] = []
                children[group] = []
                root[parent].append(group)
            parent = group
        root[parent].append(opt)

    lines: list[str] = []

    def emit(node: Group | None, depth: int) -> None:
        pad = "  " * depth
        for entry in root[node]:
            if isinstance(entry, Group):
                lines.extend(pad + c for c in _comment(entry.description))
                lines.append(f"{pad}{entry.yaml}:")
                emit(entry, depth + 1)
                continue
            opt: Option = entry
            default = values.default(opt.name) or "<unset>"
            note = f"{opt.description}\n(default: {default}, type: {opt.kind.type_name})"
            lines.extend(pad + c for c in _comment(note))
            lines.extend(pad + line for line in _yaml_value(opt.yaml, opt.kind.to_yaml(values.written(opt.field))))

    emit(None, 0)
    return "\n".join(lines) + "\n"


def options_markdown() -> str:
    """docs/options.md: a table of every option."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    def code(text: str) -> str:
        return f"`{cell(text)}`" if text else ""

    out = [
        "# Server options",
        "",
        "Every option `coderapi server` accepts, in declaration order: the same flags, environment variables",
        "and YAML keys as `coder server`. Generated from `coderapi/config/options.py`; do not edit by hand.",
        "Regenerate it with",
        "`python -c 'from coderapi.config.docs import options_markdown as m; print(m(), end=\"\")' > docs/options.md`.",
        "",
        "Hidden options are accepted like the others but left out of `--help`. Secret options are never",
        "shown by `/api/v2/deployment/config` or `--write-config` and have no YAML key.",
        "",
        "| Option | Flag | Env | YAML | Default | Type | Description |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for opt in OPTIONS:
        flag = f"--{opt.flag}" + (f", -{opt.shorthand}" if opt.shorthand else "")
        notes = []
        if opt.hidden:
            notes.append("hidden")
        if opt.secret:
            notes.append("secret")
        if opt.use_instead:
            notes.append("deprecated: use " + _use_instead_text(opt))
        desc = opt.description.strip() + (f" ({'; '.join(notes)})" if notes else "")
        out.append(
            "| "
            + " | ".join(
                [
                    cell(opt.name),
                    code(flag),
                    code(opt.env),
                    code(opt.yaml_path),
                    code(_default_text(opt, None)),
                    code(opt.kind.type_name),
                    cell(desc),
                ]
            )
            + " |"
        )
    out.append("")
    out.append("## Groups")
    out.append("")
    out.append("| Group | YAML | Description |")
    out.append("| --- | --- | --- |")
    for group in GROUPS:
        yaml_path = ".".join(g.yaml for g in group.ancestry) if group.yaml else ""
        out.append(f"| {cell(group.full_name)} | {code(yaml_path)} | {cell(group.description)} |")
    return "\n".join(out) + "\n"
