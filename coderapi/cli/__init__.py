"""The `coderapi` command: `server`, `db`, `users`, `tokens`, `dev`."""

from __future__ import annotations

import click

from coderapi.cli.db import db
from coderapi.cli.dev import dev
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
main.add_command(dev)
