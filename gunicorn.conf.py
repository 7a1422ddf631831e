"""gunicorn settings for `gunicorn wsgi:app`: the same as `coderapi server` uses.

The options come from the environment (CODER_* and the YAML file CODER_CONFIG_PATH names; CODERAPI_*),
as `wsgi.py` builds the app from it. Migrations run once here, in the master, before workers start.
"""

from coderapi import config, logs, serving
from coderapi.config.settings import Settings, process_environ

_environ = process_environ()
_values = config.load((), _environ)
_settings = Settings.from_environ(_environ)
logs.configure_from_values(_values)
serving.migrate(_values, _settings)

_address = serving.prometheus_address(_values)
_export = serving.MetricsExport(_address) if _address else None
if _export is not None:
    _export.prepare(_environ)

globals().update({k: v for k, v in serving.gunicorn_options(_values, _settings).items() if v is not None})
globals().update(serving.hooks(_export))
