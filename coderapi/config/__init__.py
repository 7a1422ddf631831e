"""Coder's deployment configuration (the option table, typed values, loading) and coderapi's settings.

values = load(argv, environ)          # flag > env > YAML > default; raises ConfigError
values.effective.rate_limit.api       # an option that takes effect, typed (config/effective.py)
values.get("rate_limit.api")          # any option by `config` path
values.source("Access URL")           # "flag" | "env" | "yaml" | "default" | ""
"""

from coderapi.config.docs import help_text, write_config_yaml
from coderapi.config.loader import ConfigError, DeploymentValues, load

__all__ = ["ConfigError", "DeploymentValues", "help_text", "load", "write_config_yaml"]
