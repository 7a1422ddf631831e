"""Commands that take Coder's server flags: the flags go, unparsed by click, to the option loader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import click

from coderapi import config
from coderapi.config.settings import process_environ

# click passes every argument through untouched; `--help` included, so the loader's help is printed.
CODER_FLAGS: dict[str, Any] = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 1."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def wants_help(argv: Sequence[str]) -> bool:
    for arg in argv:
        if arg == "--":
            return False
        if arg in ("--help", "-h"):
            return True
    return False


def resolve_values(argv: Sequence[str], command: str) -> Any:
    """The deployment values from `argv` and the environment (flag > env > YAML > default).

    Prints the option help and exits 0 for `--help`; prints the error and exits 1 when the
    configuration is invalid."""
    if wants_help(argv):
        click.echo(f"Usage: {command} [flags]\n")
        click.echo(config.help_text())
        raise SystemExit(0)
    try:
        return config.load(tuple(argv), process_environ())
    except config.ConfigError as err:
        fail(str(err))
