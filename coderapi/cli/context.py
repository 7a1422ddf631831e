"""What admin commands share with the server: the Store its configuration points at."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from coderapi import config
from coderapi.cli.options import fail
from coderapi.config.settings import Settings, SettingsError, process_environ
from coderapi.database import Store
from coderapi.database.engine import error_line


def open_store() -> Store:
    """The migrated Store from the server's configuration sources (`CODER_*` / `CODERAPI_*`
    environment and the YAML file they name): PostgreSQL with `CODER_PG_CONNECTION_URL`, else the
    embedded SQLite file. Exits 1 with one line on stderr when the configuration or database fails."""
    from coderapi.database.open import open_store as open_configured_store

    try:
        values = config.load((), process_environ())
        settings = Settings.from_environ()
        store = open_configured_store(values, settings)
        store.migrate()
    except (config.ConfigError, SettingsError, OSError) as err:
        lines = str(err).strip().splitlines()
        fail(lines[0] if lines else type(err).__name__)
    except SQLAlchemyError as err:
        fail(error_line(err))
    return store


def load_values() -> config.DeploymentValues:
    """The deployment values from the environment (flag-less). Exits 1 when they are invalid."""
    try:
        return config.load((), process_environ())
    except config.ConfigError as err:
        fail(str(err))


class StoreGroup(click.Group):
    """A group of commands on the Store: a database error in any of them (a write to a read-only
    database, a lost connection) ends the command with one line on stderr instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as err:
            fail(f"{ctx.info_name} {ctx.invoked_subcommand}: {error_line(err)}")
