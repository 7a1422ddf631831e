"""gunicorn settings for `gunicorn wsgi:app`: the same as `coderapi server` uses.

The options come from the environment (CODER_* and the YAML file CODER_CONFIG_PATH names; CODERAPI_*),
as `wsgi.py` builds the app from it. Migrations run once here, in the master, before workers start.
gunicorn reads every global of this file whose name is a setting, so helpers carry a leading underscore.
"""

from coderapi import config as _config
from coderapi import logs as _logs
from coderapi import serving as _serving
from coderapi.config.settings import Settings as _Settings
from coderapi.config.settings import process_environ as _process_environ
from coderapi.services import updatecheck as _updatecheck

_environ = _process_environ()
_values = _config.load((), _environ)
_settings = _Settings.from_environ(_environ)
_logs.configure_from_values(_values)
_updatecheck.announce(_values, _settings)
_serving.migrate(_values, _settings)

# SIGHUP executes this file again: the exporter and its sample directory are the first run's.
_export = _serving.master_export(_serving.prometheus_address(_values), _environ)
# The node's rate-limit counter directory, in the environment wsgi.py's workers build their app from.
_counters = _serving.master_counters(_settings)

globals().update({k: v for k, v in _serving.gunicorn_options(_values, _settings).items() if v is not None})
globals().update(_serving.hooks(_export, _counters, _serving.exposure_warning(_values)))
