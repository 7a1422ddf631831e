"""Loading the deployment configuration: flag > env > YAML > default, as serpent v0.13.0 and
`coder server` do it, with a value source kept per option.

`load(argv, environ)` is pure: it reads the environment it is given (never `os.environ`) and the YAML
file that configuration names. Any invalid input raises `ConfigError` with one line naming the option,
where the bad value came from and the value (secret values are never shown).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml

from coderapi.config.effective import effective
from coderapi.config.experiments import read_experiments
from coderapi.config.gotext import parse_bool, write_csv_record
from coderapi.config.options import (
    EXTERNAL_AUTH_CONFIGS,
    OPTIONS,
    OPTIONS_BY_FIELD,
    OPTIONS_BY_FLAG,
    OPTIONS_BY_SHORTHAND,
    Option,
)
from coderapi.config.settings import WIRE_FORMAT_REFERENCE
from coderapi.config.wire import deployment_config_body
from coderapi.config.yamlnodes import compose_yaml, is_null
from coderapi.goformat import quote

FLAG, ENV, YAML, DEFAULT, NONE = "flag", "env", "yaml", "default", ""

REDACTED = "<redacted>"
SUFFIX_LEADING_DOT = "you must omit any leading . in workspace hostname suffix"

EXTERNAL_AUTH_FIELD = "external_auth"


class ConfigError(ValueError):
    """The configuration cannot be used; `str()` is one line naming the option, source and value."""


def _one_line(text: str) -> str:
    return " ".join(text.split("\n"))


def _invalid(opt: Option, where: str, raw: str, reason: str) -> ConfigError:
    shown = quote(raw)
    if opt.secret:
        shown = REDACTED
        if raw:
            reason = reason.replace(raw, REDACTED)
    return ConfigError(_one_line(f"{opt.name} (--{opt.flag}): invalid value {shown} from {where}: {reason}"))


class DeploymentValues:
    """The loaded configuration: typed values by field, value sources by option name.

    Build it with `load()`. Values never change after loading, so `get` is a dict lookup and the
    `/deployment/config` and `/deployment/ssh` bodies are computed once.
    """

    __slots__ = ("_bodies", "_defaults", "_env_providers", "_sources", "_ssh", "_values", "effective", "experiments")

    def __init__(
        self,
        values: dict[str, Any],
        sources: dict[str, str],
        defaults: dict[str, str],
        experiments: list[str],
        ssh: dict[str, Any],
        env_providers: int = 0,
    ) -> None:
        self._values = values
        # How many `external_auth` entries came from CODER_EXTERNAL_AUTH_<n>_* (appended last).
        self._env_providers = env_providers
        self._sources = sources
        self._defaults = defaults
        self._ssh = ssh
        self._bodies: dict[str, dict[str, Any]] = {}
        #: coderd.ReadExperiments: lower-cased, `*` expanded to the safe list, order kept.
        self.experiments = experiments
        #: The options that take effect, typed (`effective.tls.enable` is `get("tls.enable")`).
        self.effective = effective(values.__getitem__)

    def get(self, field: str) -> Any:
        """The value at a `config` path, e.g. `rate_limit.api`, `config_ssh.deploymentName`."""
        return self._values[field]

    def written(self, field: str) -> Any:
        """The value `--write-config` writes for `field`: `get` without the external auth providers of
        CODER_EXTERNAL_AUTH_<n>_*, which coder adds after write-config runs (so their secrets are never
        printed, and reusing the output with the same environment does not list a provider twice)."""
        value = self._values[field]
        if field == EXTERNAL_AUTH_FIELD and self._env_providers:
            return value[: len(value) - self._env_providers]
        return value

    def source(self, name: str) -> str:
        """How the option called `name` was set: "flag", "env", "yaml", "default" or ""."""
        return self._sources[name]

    def default(self, name: str) -> str:
        """The default text of the option called `name` as it applies here, `""` when none."""
        return self._defaults.get(name, "")

    def options(self) -> Iterator[tuple[Option, Any]]:
        """Every option with its value, in declaration order."""
        for opt in OPTIONS:
            yield opt, self._values[opt.field]

    def deployment_config(self, form: str = WIRE_FORMAT_REFERENCE) -> dict[str, Any]:
        """The `GET /deployment/config` body in wire form `form`, `{"config": ..., "options": [...]}`,
        secrets removed."""
        body = self._bodies.get(form)
        if body is None:
            body = self._bodies[form] = deployment_config_body(self, form)
        return body

    def ssh_config(self) -> dict[str, Any]:
        """The `GET /deployment/ssh` body (`codersdk.SSHConfigResponse`)."""
        return self._ssh


class _Loader:
    """The state of one `load()` call."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.values: dict[str, Any] = {field: opts[0].kind.zero() for field, opts in OPTIONS_BY_FIELD.items()}
        self.sources: dict[str, str] = {}  # by field
        self.origins: dict[str, str] = {}  # by field: where the value came from, for error messages
        self.env_providers = 0  # external auth providers taken from CODER_EXTERNAL_AUTH_<n>_*

    def set(self, opt: Option, raw: str, level: str, where: str) -> None:
        try:
            value = opt.kind.parse(raw, self.values[opt.field])
        except ValueError as err:
            raise _invalid(opt, where, raw, str(err)) from None
        self.put(opt, value, level, where)

    def put(self, opt: Option, value: Any, level: str, where: str) -> None:
        self.values[opt.field] = value
        self.sources[opt.field] = level
        self.origins[opt.field] = where

    # 1. Environment -------------------------------------------------------------------------------
    def apply_env(self) -> None:
        # serpent upper-cases variable names; an empty value counts as unset (v0.13.0).
        env = {k.upper(): v for k, v in self.environ.items()}
        for opt in OPTIONS:
            if not opt.env:
                continue
            name = opt.env
            if name not in env:
                name = "HOMEBREW_" + opt.env  # Homebrew services only pass HOMEBREW_* through
                if name not in env:
                    continue
            raw = env[name]
            if raw == "":
                continue
            self.set(opt, raw, ENV, f"env {name}")

    # 2. Flags -------------------------------------------------------------------------------------
    def apply_flags(self, argv: Sequence[str]) -> None:
        for opt, raw, where in _parse_argv(argv):
            self.set(opt, raw, FLAG, where)

    # 3. YAML --------------------------------------------------------------------------------------
    def apply_yaml_file(self) -> None:
        path = self.values["config"]
        if not path:
            return
        where = self.origins.get("config", "")
        config_opt = OPTIONS_BY_FIELD["config"][0]
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as err:
            reason = f"cannot read {quote(path)} from {where}: {err.strerror}"
            raise ConfigError(_one_line(f"{config_opt.name} (--{config_opt.flag}): {reason}")) from None
        except UnicodeDecodeError:
            raise ConfigError(f"{config_opt.name} (--{config_opt.flag}): {quote(path)} is not UTF-8 text") from None
        try:
            root = compose_yaml(text)
        except ValueError as err:
            raise ConfigError(_one_line(f"YAML file {quote(path)} from {where}: {err}")) from None
        self.apply_yaml(root, path)

    def apply_yaml(self, root: yaml.Node | None, path: str) -> None:
        if is_null(root):
            return
        if not isinstance(root, yaml.MappingNode):
            raise ConfigError(f"YAML file {quote(path)}: expected a mapping at the top level")
        nodes = _flatten(root, "", path)
        matched: set[str] = set()
        for opt in OPTIONS:
            if not opt.yaml:
                continue
            groups = [g.yaml for g in opt.group.ancestry] if opt.group else []
            for i in range(1, len(groups) + 1):
                nodes.pop(".".join(groups[:i]), None)
            key = opt.yaml_path
            node = nodes.get(key)
            if node is None:
                continue
            matched.add(key)
            if self.sources.get(opt.field) in (FLAG, ENV):
                continue
            where = f"YAML key {key} in {path}"
            try:
                value = opt.kind.from_yaml(node, self.values[opt.field])
            except ValueError as err:
                raw = str(node.value) if isinstance(node, yaml.ScalarNode) else f"<YAML {type(node).__name__}>"
                raise _invalid(opt, where, raw, str(err)) from None
            self.put(opt, value, YAML, where)
        unknown = sorted(k for k in nodes if not any(k == m or k.startswith(m + ".") for m in matched))
        if unknown:
            listed = ", ".join(quote(k) for k in unknown)
            raise ConfigError(_one_line(f"YAML file {quote(path)}: unknown option {listed}"))

    # 4. Defaults ----------------------------------------------------------------------------------
    def apply_defaults(self) -> dict[str, str]:
        defaults: dict[str, str] = {}
        for opt in OPTIONS:
            text = opt.default_from(self.environ) if opt.default_from else opt.default
            if text:  # serpent treats an empty default as none
                defaults[opt.name] = text
        for field, opts in OPTIONS_BY_FIELD.items():
            if field in self.sources:
                continue
            for opt in opts:
                if opt.name in defaults:
                    self.set(opt, defaults[opt.name], DEFAULT, "default")
                    break
        return defaults

    # 5. What `coder server` changes after parsing -------------------------------------------------
    def apply_server_changes(self) -> None:
        values = self.values
        address = values["address"]
        if str(address):
            # The deprecated --address feeds the listener TLS decides on.
            if values["tls.enable"]:
                values["tls.address"] = address
            else:
                values["http_address"] = str(address)
        if values["rate_limit.disable_all"]:
            values["rate_limit.api"] = -1
        if not values["oidc.groups_field"] and "groups" in values["oidc.scopes"]:
            values["oidc.groups_field"] = "groups"
        env_providers = external_auth_from_env(self.environ)
        self.env_providers = len(env_providers)
        if env_providers:
            values[EXTERNAL_AUTH_FIELD] = [*values[EXTERNAL_AUTH_FIELD], *env_providers]


def load(argv: Sequence[str], environ: Mapping[str, str]) -> DeploymentValues:
    """Parse `coder server` flags (`argv`, without the command name), the `environ` given and the YAML
    file they name into DeploymentValues. Raises ConfigError."""
    loader = _Loader(environ)
    loader.apply_env()
    loader.apply_flags(argv)
    loader.apply_yaml_file()
    defaults = loader.apply_defaults()
    loader.apply_server_changes()
    ssh = _ssh_config(loader)
    sources = {opt.name: loader.sources.get(opt.field, NONE) for opt in OPTIONS}
    experiments = read_experiments(loader.values["experiments"])
    return DeploymentValues(loader.values, sources, defaults, experiments, ssh, loader.env_providers)


def _flatten(node: yaml.MappingNode, prefix: str, path: str) -> dict[str, yaml.Node]:
    """serpent's mapYAMLNodes: every key path, groups and options alike, to its node."""
    out: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(f"YAML file {quote(path)}: expected a scalar key under {quote(prefix or '<top>')}")
        key = prefix + str(key_node.value)
        out[key] = value_node
        if isinstance(value_node, yaml.MappingNode):
            out.update(_flatten(value_node, key + ".", path))
    return out


def _parse_argv(argv: Sequence[str]) -> Iterator[tuple[Option, str, str]]:
    """pflag's parsing: `--flag value`, `--flag=value`, `-x value`, `-xvalue`, `-x=value`; a bare
    boolean flag means true."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            if i < len(argv):
                raise ConfigError(f"unexpected argument {quote(argv[i])}: the server takes flags only")
            return
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            opt = OPTIONS_BY_FLAG.get(name)
            if opt is None:
                raise ConfigError(f"unknown flag: --{name}")
            if not eq:
                if opt.kind.no_opt_value is not None:
                    value = opt.kind.no_opt_value
                elif i < len(argv):
                    value = argv[i]
                    i += 1
                else:
                    raise ConfigError(f"{opt.name}: flag needs an argument: --{name}")
            yield opt, value, f"flag --{name}"
        elif arg.startswith("-") and len(arg) > 1:
            shorts = arg[1:]
            while shorts:
                letter, rest = shorts[0], shorts[1:]
                opt = OPTIONS_BY_SHORTHAND.get(letter)
                if opt is None:
                    raise ConfigError(f"unknown shorthand flag: {quote(letter)} in {quote(arg)}")
                if rest.startswith("="):
                    value, shorts = rest[1:], ""
                elif opt.kind.no_opt_value is not None:
                    value, shorts = opt.kind.no_opt_value, rest
                elif rest:
                    value, shorts = rest, ""
                elif i < len(argv):
                    value, shorts = argv[i], ""
                    i += 1
                else:
                    raise ConfigError(f"{opt.name}: flag needs an argument: -{letter}")
                yield opt, value, f"flag -{letter}"
        else:
            raise ConfigError(f"unexpected argument {quote(arg)}: the server takes flags only")


def _ssh_config(loader: _Loader) -> dict[str, Any]:
    """codersdk.SSHConfigResponse as coderd.New builds it; a bad suffix or option stops startup."""
    values = loader.values
    suffix = values["workspace_hostname_suffix"]
    if suffix.startswith("."):
        opt = OPTIONS_BY_FIELD["workspace_hostname_suffix"][0]
        where = loader.origins.get(opt.field, "")
        raise ConfigError(_one_line(f"{opt.name} (--{opt.flag}) from {where}: {SUFFIX_LEADING_DOT}: {suffix}"))
    entries = values["config_ssh.sshconfigOptions"]
    options: dict[str, str] = {}
    for entry in entries:
        cut = min((i for i in (entry.find(" "), entry.find("=")) if i >= 0), default=-1)
        if cut < 0:
            opt = OPTIONS_BY_FIELD["config_ssh.sshconfigOptions"][0]
            where = loader.origins.get(opt.field, "")
            csv = write_csv_record(entries)
            raise ConfigError(
                _one_line(
                    f"{opt.name} (--{opt.flag}) from {where}: parse ssh config options {quote(csv)}: "
                    f"invalid config-ssh option {quote(entry)}"
                )
            )
        options[entry[:cut]] = entry[cut + 1 :]
    return {
        "hostname_prefix": values["config_ssh.deploymentName"] or "coder.",
        "hostname_suffix": suffix,
        "ssh_config_options": dict(sorted(options.items())),
    }


# CODER_EXTERNAL_AUTH_<n>_<KEY> (and legacy CODER_GITAUTH_<n>_<KEY>) keys -> ExternalAuthConfig fields.
_EXTERNAL_AUTH_ENV_KEYS = {
    "ID": "id",
    "TYPE": "type",
    "CLIENT_ID": "client_id",
    "CLIENT_SECRET": "client_secret",
    "AUTH_URL": "auth_url",
    "TOKEN_URL": "token_url",
    "REVOKE_URL": "revoke_url",
    "VALIDATE_URL": "validate_url",
    "REGEX": "regex",
    "DEVICE_FLOW": "device_flow",
    "DEVICE_CODE_URL": "device_code_url",
    "NO_REFRESH": "no_refresh",
    "SCOPES": "scopes",
    "EXTRA_TOKEN_KEYS": "extra_token_keys",
    "APP_INSTALL_URL": "app_install_url",
    "APP_INSTALLATIONS_URL": "app_installations_url",
    "DISPLAY_NAME": "display_name",
    "DISPLAY_ICON": "display_icon",
    "MCP_URL": "mcp_url",
    "MCP_TOOL_ALLOW_REGEX": "mcp_tool_allow_regex",
    "MCP_TOOL_DENY_REGEX": "mcp_tool_deny_regex",
    "PKCE_METHODS": "code_challenge_methods_supported",
}
_SPACE_SEPARATED = {"scopes", "extra_token_keys", "code_challenge_methods_supported"}


def external_auth_from_env(environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """`coder server`'s ReadExternalAuthProvidersFromEnv: numbered providers, in order, no gaps."""
    providers: list[dict[str, Any]] = []
    for prefix in ("CODER_EXTERNAL_AUTH_", "CODER_GITAUTH_"):
        found: list[dict[str, Any]] = []
        # coder sorts the variables as text, so provider 10 comes before provider 2.
        for name in sorted(k for k in environ if k.startswith(prefix)):
            raw = environ[name]
            number, sep, key = name[len(prefix) :].partition("_")
            if not sep:
                raise ConfigError(f"External Auth Providers: invalid env var: {name}")
            if not number.isdigit():
                raise ConfigError(f"External Auth Providers: parse number: {name}")
            index = int(number)
            if index > len(found):
                raise ConfigError(f"External Auth Providers: provider num {len(found)} skipped: {name}")
            if index == len(found):
                found.append(EXTERNAL_AUTH_CONFIGS.new_item())
            field = _EXTERNAL_AUTH_ENV_KEYS.get(key)
            if field is None:
                continue
            if field in ("device_flow", "no_refresh"):
                try:
                    found[index][field] = parse_bool(raw)
                except ValueError:
                    raise ConfigError(f"External Auth Providers: parse bool from env {name}: {quote(raw)}") from None
            elif field in _SPACE_SEPARATED:
                found[index][field] = raw.split(" ")
            else:
                found[index][field] = raw
        providers.extend(found)
    return providers
