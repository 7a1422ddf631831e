"""Text made from the option table: --help, --write-config (and loading it back), docs/options.md."""

from __future__ import annotations

import pathlib

import yaml

from coderapi.config import help_text, load, write_config_yaml
from coderapi.config.docs import options_markdown
from coderapi.config.options import OPTIONS

ROOT = pathlib.Path(__file__).resolve().parent.parent


def assert_contains(text: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in text, fragment


def test_help_lists_every_visible_option_grouped() -> None:
    text = help_text()
    for opt in OPTIONS:
        flag_line = f"--{opt.flag} "
        if opt.hidden:
            assert flag_line not in text, opt.name
            continue
        assert flag_line in text, opt.name
        if opt.env:
            assert f"${opt.env}" in text
        if opt.yaml_path:
            assert f"YAML: {opt.yaml_path}" in text
    assert text.startswith("OPTIONS:\n")
    assert_contains(
        text,
        "\nNETWORKING / TLS OPTIONS:\n",
        "\nINTROSPECTION / PROMETHEUS OPTIONS:\n",
        "      --access-url url, $CODER_ACCESS_URL\n",
        "  -c, --config yaml-config-path, $CODER_CONFIG_PATH\n",
        "--postgres-auth password|awsiamrds, $CODER_PG_AUTH (default: password)",
        "(default: 876600h0m0s)",
        "DEPRECATED: Use --email-from instead.",
        "(default: ~/.cache/coder)",
    )
    assert "DEPRECATED: Use --log-filter instead." not in text  # Verbose is hidden
    assert "(default: /srv/cache/coder)" in help_text({"XDG_CACHE_HOME": "/srv/cache"})
    groups = [line.removesuffix("OPTIONS:").strip() for line in text.splitlines() if line.endswith("OPTIONS:")]
    full_names = sorted({o.group.full_name for o in OPTIONS if o.group and not o.hidden})
    assert groups == ["", *(name.upper() for name in full_names)]  # byte order, as Go sorts
    assert max(len(line) for line in text.splitlines() if line.startswith("          ")) <= 80


def test_write_config_round_trips(tmp_path: pathlib.Path) -> None:
    env = {
        "CODER_ACCESS_URL": "https://coder.example.com/base?x=1",
        "CODER_MAX_TOKEN_LIFETIME": "60d",
        "CODER_EXPERIMENTS": "foo,BAR",
        "CODER_OIDC_AUTH_URL_PARAMS": '{"prompt": "consent", "n": "1"}',
        "CODER_OIDC_USER_ROLE_MAPPING": '{"admins": ["owner"]}',
        "CODER_OIDC_ORGANIZATION_MAPPING": '{"org": ["0d9f3c6a-8e6b-4c31-9f43-2b3c8b1e4a10"]}',
        "CODER_OIDC_GROUP_REGEX_FILTER": "^(dev|ops)-.*$",
        "CODER_SUPPORT_LINKS": '[{"name": "Docs", "target": "https://d", "icon": "docs", "location": "navbar"}]',
        "CODER_PG_AUTH": "AWSIAMRDS",
        "CODER_TLS_ADDRESS": "[::1]:8443",
        "CODER_SSH_CONFIG_OPTIONS": 'ForwardAgent yes,"Weird=va,lue"',
        "CODER_DERP_SERVER_STUN_ADDRESSES": "",
        "CODER_TLS_CERT_FILE": "a.pem,b.pem",
        "CODER_WEB_TERMINAL_RENDERER": "true",
        "CODER_CLI_UPGRADE_MESSAGE": "123",
        "CODER_OIDC_SIGN_IN_TEXT": "null",
        "CODER_EXTERNAL_AUTH_0_TYPE": "github",
        "CODER_EXTERNAL_AUTH_0_SCOPES": "repo workflow",
        "CODER_EXTERNAL_AUTH_0_NO_REFRESH": "true",
        "CODER_DERP_SERVER_REGION_ID": "-5",
        "CODER_AGENT_FALLBACK_TROUBLESHOOTING_URL": "",
        "HOME": "/home/u",
    }
    first = load(["--verbose", "--telemetry=false"], env)
    text = write_config_yaml(first)
    yaml.safe_load(text)  # valid YAML
    path = tmp_path / "written.yaml"
    path.write_text(text)
    second = load((), {"CODER_CONFIG_PATH": str(path), "HOME": "/home/u"})
    for opt in OPTIONS:
        if opt.yaml:
            # Providers from CODER_EXTERNAL_AUTH_<n>_* are added after write-config runs, so never written.
            assert second.get(opt.field) == first.written(opt.field), opt.name
            assert second.source(opt.name) == "yaml", opt.name
    assert second.experiments == ["foo", "bar"]
    assert [p["type"] for p in first.get("external_auth")] == ["github"]
    assert second.get("external_auth") == []
    assert second.get("session_lifetime.max_token_lifetime") == 60 * 24 * 3600 * 10**9


def test_write_config_shape() -> None:
    text = write_config_yaml(load((), {"HOME": "/home/u"}))
    written = {opt.yaml_path for opt in OPTIONS if opt.yaml}
    data = yaml.safe_load(text)
    for path in written:
        node = data
        for key in path.split("."):
            node = node[key]
    assert_contains(
        text,
        "  # The external URL users and workspaces use to reach this deployment.\n",
        "  # (default: <unset>, type: url)\n  accessURL: ''\n",
        "# (default: 876600h0m0s, type: duration)\n    maxTokenLifetime: 876600h0m0s\n",
        "(default: 60d, type: duration)\n  retention: 1440h0m0s\n",
        "(default: /home/u/.cache/coder, type: string)\ncacheDir: /home/u/.cache/coder\n",
        "    stunAddresses:\n      - stun.l.google.com:19302\n",
        "enum[password\\|awsiamrds]",
        "# Where the server listens and the address users reach it at.\nnetworking:\n",
    )
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            assert len(line.lstrip()) <= 82 or " " not in line.lstrip()[2:], line


def test_docs_options_md_is_current() -> None:
    assert (ROOT / "docs" / "options.md").read_text() == options_markdown()
    text = options_markdown()
    for opt in OPTIONS:
        assert f"| {opt.name.replace('|', chr(92) + '|')} |" in text
