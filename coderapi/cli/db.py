"""`coderapi db migrate`: apply pending database migrations and exit."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from coderapi.cli.options import CODER_FLAGS, fail, resolve_values
from coderapi.config.settings import Settings, SettingsError, process_environ
from coderapi.database.engine import error_line


@click.group()
def db() -> None:
    """The database coderapi stores its data in."""


@db.command("migrate", context_settings=CODER_FLAGS, add_help_option=False)
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply every pending migration to the configured database (CODER_PG_CONNECTION_URL, else the
    embedded SQLite file), then exit. Takes the server's flags."""
    from coderapi.database.open import open_store

    values = resolve_values(tuple(ctx.args), "coderapi db migrate")
    try:
        settings = Settings.from_environ(process_environ())
        store = open_store(values, settings)
        try:
            store.migrate()
        finally:
            store.close()
    except (SettingsError, SQLAlchemyError, OSError) as err:
        fail(f"migrate: {error_line(err)}")
    click.echo(f"database migrated ({store.dialect})")
