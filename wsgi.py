"""`gunicorn wsgi:app`: the app configured from CODER_* / CODERAPI_* environment variables."""

from coderapi import config, logs
from coderapi.app import create_app
from coderapi.config.settings import process_environ

_values = config.load((), process_environ())
# An entry point configures the process's logging; create_app builds an app and nothing global.
logs.configure_from_values(_values)
app = create_app(_values)
