"""What a `list` command prints: the rows' wire JSON (`-o json`) or an aligned table (`-o table`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from marshmallow import Schema

output_option = click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)


def echo_list(
    output: str, items: Sequence[Any], schema: Schema, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]
) -> None:
    """`items` dumped by `schema` as indented JSON, or `header` and `rows` as columns two spaces apart."""
    if output == "json":
        click.echo(json.dumps([schema.dump(item) for item in items], indent=2))
        return
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
