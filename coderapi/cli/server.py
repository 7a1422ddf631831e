"""`coderapi server [flags]`: resolve Coder's options, migrate the database, serve with gunicorn."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from coderapi import config, logs, serving
from coderapi.cli.options import CODER_FLAGS, fail, resolve_values
from coderapi.config.settings import Settings, SettingsError, process_environ
from coderapi.database.engine import error_line
from coderapi.httpmw.realip import ProxyConfigError, RealIPConfig
from coderapi.services import updatecheck


@click.command("server", context_settings=CODER_FLAGS, add_help_option=False)
@click.pass_context
def server(ctx: click.Context) -> None:
    """Start the API server. Takes Coder's server flags (`coderapi server --help` lists them); the
    same options come from CODER_* environment variables and the YAML file named by --config."""
    argv = tuple(ctx.args)
    values = resolve_values(argv, "coderapi server")
    if values.effective.write_config:
        click.echo(config.write_config_yaml(values), nl=False)
        return
    environ = process_environ()
    try:
        settings = Settings.from_environ(environ)
        # Problems a worker would only find after the fork are reported here, before anything binds.
        RealIPConfig.parse(values.effective.proxy.trusted_origins or (), values.effective.proxy.trusted_headers or ())
        serving.gunicorn_options(values, settings)
        serving.prometheus_address(values)
        logs.configure_from_values(values)
    except (SettingsError, ProxyConfigError, serving.ServingError, logs.LogConfigError) as err:
        fail(str(err))
    try:
        serving.migrate(values, settings)
    except (SQLAlchemyError, OSError) as err:
        fail(f"migrate database: {error_line(err)}")
    updatecheck.announce(values, settings)

    def resolve() -> object:
        # SIGHUP: the same flags, the environment and YAML file as they are now.
        return config.load(argv, process_environ())

    try:
        serving.run(values, resolve, settings, environ)
    except serving.ServingError as err:
        fail(str(err))
