"""gunicorn options from the deployment's values and coderapi's settings (no server started here)."""

from __future__ import annotations

import pathlib
import ssl

import pytest

from coderapi import serving
from coderapi.config.settings import Settings
from tests.conftest import MakeValues


@pytest.fixture
def base_settings(tmp_path: pathlib.Path) -> Settings:
    return Settings(data_dir=tmp_path)


def test_defaults(make_values: MakeValues, base_settings: Settings) -> None:
    opts = serving.gunicorn_options(make_values(), base_settings)
    assert opts["bind"] == ["127.0.0.1:3000"]
    assert opts["workers"] == serving.default_workers()
    assert opts["threads"] == 1
    assert opts["worker_class"] == "coderapi.workers.SyncWorker"
    assert opts["preload_app"] is False
    assert opts["limit_request_line"] == 8190
    assert opts["limit_request_field_size"] == 8190
    assert opts["limit_request_fields"] == 100
    assert opts["graceful_timeout"] == 30
    assert opts["forwarded_allow_ips"] == ""
    assert opts["accesslog"] is None
    assert "certfile" not in opts


@pytest.mark.parametrize(("cpus", "workers"), [(1, 3), (2, 5), (4, 9), (64, 12)])
def test_default_workers(cpus: int, workers: int) -> None:
    assert serving.default_workers(cpus) == workers


def test_workers_and_threads_from_settings(make_values: MakeValues, tmp_path: pathlib.Path) -> None:
    settings = Settings.from_environ(
        {"CODERAPI_DATA_DIR": str(tmp_path), "CODERAPI_WORKERS": "3", "CODERAPI_THREADS": "4"}
    )
    opts = serving.gunicorn_options(make_values(), settings)
    assert (opts["workers"], opts["threads"], opts["worker_class"]) == (3, 4, "coderapi.workers.ThreadWorker")


def test_http_address_from_flag_env_and_ipv6(make_values: MakeValues, base_settings: Settings) -> None:
    assert serving.gunicorn_options(make_values(["--http-address", "0.0.0.0:8080"]), base_settings)["bind"] == [
        "0.0.0.0:8080"
    ]
    env = {"CODER_HTTP_ADDRESS": ":9000"}
    assert serving.gunicorn_options(make_values(env=env), base_settings)["bind"] == ["0.0.0.0:9000"]
    v6 = make_values(["--http-address", "[::1]:3000"])
    assert serving.gunicorn_options(v6, base_settings)["bind"] == ["[::1]:3000"]


def test_no_address_is_an_error(make_values: MakeValues, base_settings: Settings) -> None:
    with pytest.raises(serving.ServingError, match="http-address or tls-address"):
        serving.gunicorn_options(make_values(["--http-address", ""]), base_settings)
    with pytest.raises(serving.ServingError, match="invalid port"):
        serving.gunicorn_options(make_values(["--http-address", "127.0.0.1:http"]), base_settings)


def test_trusted_origins_become_forwarded_allow_ips(make_values: MakeValues, base_settings: Settings) -> None:
    values = make_values(["--proxy-trusted-origins", "10.0.0.0/8,192.168.1.1/32"])
    assert serving.gunicorn_options(values, base_settings)["forwarded_allow_ips"] == "10.0.0.0/8,192.168.1.1/32"


def write_cert(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_binds_the_tls_address_with_the_certificate(
    make_values: MakeValues, base_settings: Settings, tmp_path: pathlib.Path
) -> None:
    cert, key = write_cert(tmp_path)
    values = make_values(
        ["--tls-enable", "--tls-address", "127.0.0.1:8443", "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    )
    opts = serving.gunicorn_options(values, base_settings)
    assert opts["bind"] == ["127.0.0.1:8443"]
    assert (opts["certfile"], opts["keyfile"]) == (str(cert), str(key))
    assert opts["cert_reqs"] == ssl.CERT_NONE
    ctx = opts["ssl_context"](None, lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_client_auth_and_min_version(
    make_values: MakeValues, base_settings: Settings, tmp_path: pathlib.Path
) -> None:
    cert, key = write_cert(tmp_path)
    values = make_values(
        [
            "--tls-enable",
            f"--tls-cert-file={cert}",
            f"--tls-key-file={key}",
            "--tls-client-auth",
            "require-and-verify",
            "--tls-client-ca-file",
            str(cert),
            "--tls-min-version",
            "tls13",
        ]
    )
    opts = serving.gunicorn_options(values, base_settings)
    assert opts["cert_reqs"] == ssl.CERT_REQUIRED
    assert opts["ca_certs"] == str(cert)
    ctx = opts["ssl_context"](None, lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-enable"], "tls-cert-file and tls-key-file are required"),
        (
            ["--tls-enable", "--tls-cert-file", "/nonexistent/cert.pem", "--tls-key-file", "/nonexistent/key.pem"],
            "does not exist",
        ),
        (
            ["--tls-enable", "--tls-cert-file", "CERT", "--tls-key-file", "KEY", "--tls-client-auth", "sometimes"],
            "client auth",
        ),
        (
            ["--tls-enable", "--tls-cert-file", "CERT", "--tls-key-file", "KEY", "--tls-min-version", "ssl3"],
            "minimum version",
        ),
    ],
)
def test_unusable_tls_is_an_error(
    make_values: MakeValues, base_settings: Settings, tmp_path: pathlib.Path, flags: list[str], message: str
) -> None:
    cert, key = write_cert(tmp_path)
    flags = [str(cert) if f == "CERT" else str(key) if f == "KEY" else f for f in flags]
    with pytest.raises(serving.ServingError, match=message):
        serving.gunicorn_options(make_values(flags), base_settings)


def test_prometheus_address(make_values: MakeValues) -> None:
    assert serving.prometheus_address(make_values()) == ""
    assert serving.prometheus_address(make_values(["--prometheus-enable"])) == "127.0.0.1:2112"
    values = make_values(["--prometheus-enable", "--prometheus-address", "0.0.0.0:9100"])
    assert serving.prometheus_address(values) == "0.0.0.0:9100"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("127.0.0.1:3000", "127.0.0.1:3000"),
        ({"host": "0.0.0.0", "port": "2112"}, "0.0.0.0:2112"),
        ({"host": "::1", "port": "80"}, "[::1]:80"),
        ({"host": "", "port": ""}, ""),
        (None, ""),
    ],
)
def test_host_port(value: object, text: str) -> None:
    assert serving.host_port(value) == text


def test_multiprocess_dir_is_emptied(tmp_path: pathlib.Path) -> None:
    import os

    from prometheus_client import values

    from coderapi import metrics

    # prepare() sets the process environment itself (the workers inherit it): restore it by hand.
    original = os.environ.pop(metrics.MULTIPROC_ENV, None)
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"x")
    export = serving.MetricsExport("127.0.0.1:0")
    try:
        export.prepare({metrics.MULTIPROC_ENV: str(tmp_path)})
        assert not stale.exists()
        assert metrics.multiprocess_dir() == str(tmp_path)
        assert not export.owns_directory
    finally:
        os.environ.pop(metrics.MULTIPROC_ENV, None)
        if original is not None:
            os.environ[metrics.MULTIPROC_ENV] = original
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    export.stop()
    assert tmp_path.exists()


@pytest.mark.slow
def test_a_read_only_database_at_worker_boot_stops_the_server(tmp_path: pathlib.Path) -> None:
    """Waiting does not fix a read-only database: each worker says so in one line and exits with
    gunicorn's boot-error code, and the master stops instead of booting workers in a loop."""
    import sys
    import time

    from gunicorn.arbiter import Arbiter

    from coderapi.testing import ChildProcess, child_env, free_port
    from tests.conftest import coderapi_cli

    env = child_env({"CODERAPI_DATA_DIR": str(tmp_path / "data"), "CODERAPI_WORKERS": "2"})
    coderapi_cli("db", "migrate", env=env)
    exe = str(pathlib.Path(sys.executable).parent / "coderapi")
    database = str(tmp_path / "data" / "coderapi.db")
    # Read-only even for root: a read-only bind mount of the file in the server's own mount namespace.
    # The master's migration only reads (nothing is pending); a worker's first write is refused.
    mount = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    argv = ["unshare", "-m", "sh", "-c", mount, database, exe, "server", "--http-address", f"127.0.0.1:{free_port()}"]
    proc = ChildProcess(argv, env, tmp_path / "server.out")
    try:
        deadline = time.monotonic() + 30
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not proc.alive(), proc.output()
    finally:
        code = proc.stop()
    output = (tmp_path / "server.out").read_text(errors="replace")
    assert code == Arbiter.WORKER_BOOT_ERROR, output
    refusals = [line for line in output.splitlines() if "the database refused the worker" in line]
    assert refusals and all(line.endswith("attempt to write a readonly database") for line in refusals), output
    assert "Worker failed to boot" in output
    assert "Traceback" not in output and "retrying" not in output


@pytest.mark.parametrize(
    ("argv", "warned"),
    [
        ((), False),  # 127.0.0.1:3000
        (("--http-address", "localhost:3000"), False),
        (("--http-address", "[::1]:3000"), False),
        (("--http-address", "0.0.0.0:3000"), True),
        (("--http-address", ":3000"), True),
        (("--http-address", "[::]:3000"), True),
        (("--http-address", "10.1.2.3:3000"), True),
        (("--http-address", "api.example.com:3000"), True),
        (("--http-address", "0.0.0.0:3000", "--proxy-trusted-origins", "10.0.0.0/8"), False),
    ],
)
def test_exposure_warning_beyond_loopback_without_a_trusted_proxy(
    make_values: MakeValues, argv: tuple[str, ...], warned: bool
) -> None:
    warning = serving.exposure_warning(make_values(argv))
    assert bool(warning) is warned
    if warned:
        assert "buffering reverse proxy" in warning and "deploy/nginx" in warning and "slowloris" in warning


def test_exposure_warning_for_the_tls_address(make_values: MakeValues, tmp_path: pathlib.Path) -> None:
    cert, key = write_cert(tmp_path)
    flags = ("--tls-enable", "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    assert serving.exposure_warning(make_values((*flags, "--tls-address", "0.0.0.0:3443")))
    assert not serving.exposure_warning(make_values((*flags, "--tls-address", "127.0.0.1:3443")))
