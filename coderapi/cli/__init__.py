"""The `coderapi` command: `server`, `db`, `users`, `tokens`, `dev`."""

from __future__ import annotations

import importlib

import click

from coderapi.cli.db import db
from coderapi.cli.server import server
from coderapi.cli.tokens import tokens
from coderapi.cli.users import users


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="coderapi", prog_name="coderapi")
def main() -> None:
    """coderapi: Coder's General REST API (/api/v2)."""


main.add_command(server)
main.add_command(db)
main.add_command(users)
main.add_command(tokens)

# `dev` is added once its module exists.
for _module, _attr in (("coderapi.cli.dev", "dev"),):
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as _err:
        if _err.name != _module:
            raise
        continue
    main.add_command(getattr(_mod, _attr))
