"""Schema fuzzing with schemathesis against a live `coderapi server` (real gunicorn workers).

Every operation of Coder's swagger (`tests/data/swagger-general.json`, a copy of the contract's) is
called on a server in the reference form (the contract's shapes), and every operation of our own spec
(`/swagger/doc.json`, which describes the bytes of the form in effect) on a server in each wire form, as
the owner, as a member and without a token, with generated path parameters, headers and bodies (schema-valid ones for
every operation, schema-violating ones where there is an input to violate). Nothing may answer 5xx;
every 2xx body must match its schema; every other answer must be the error envelope with the status
the contract gives for that caller. Example counts are bounded and generation is derandomized, so a
run is repeatable and takes seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from coderapi.config.settings import WIRE_FORMAT_CODERD, WIRE_FORMAT_REFERENCE, WIRE_FORMATS
from coderapi.httpapi.errors import FORBIDDEN, ROUTE_NOT_FOUND
from coderapi.httpmw.apikey import SIGNED_OUT_MESSAGE
from tests.conftest import LiveServer, assert_envelope, live_server
from tests.contract import SWAGGER_PATH

pytestmark = pytest.mark.slow

SPEC_PATH = SWAGGER_PATH
BASE_PATH = "/api/v2"
ROLES = ("owner", "member", "anonymous")
TOKEN_HEADER = "Coder-Session-Token"

# Generated examples per (operation, caller); operations without inputs repeat the same request, which
# hypothesis notices and stops early.
POSITIVE_EXAMPLES = 30
NEGATIVE_EXAMPLES = 40

PUBLIC = {"GET /", "GET /buildinfo", "GET /updatecheck"}
STATS_STILL_PROCESSING = "Deployment stats are still processing!"


def hypothesis_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def serve(tmp_path_factory: pytest.TempPathFactory, form: str) -> Any:
    # --swagger-enable: our own spec is published. --verbose: the debug paths (CSP reports are logged
    # field by field) run too.
    directory = tmp_path_factory.mktemp(f"fuzz-{form}")
    env = {"CODERAPI_WIRE_FORMAT": form}
    return live_server(directory, "--swagger-enable", "--verbose", env=env, workers=2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server in the reference form, the one the contract's document describes."""
    with serve(tmp_path_factory, WIRE_FORMAT_REFERENCE) as live:
        yield live


@pytest.fixture(scope="module", params=WIRE_FORMATS)
def form_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server in each wire form."""
    with serve(tmp_path_factory, request.param) as live:
        yield live


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def contract_schema() -> Any:
    return schemathesis.openapi.from_path(str(SPEC_PATH))


def operation_labels() -> list[str]:
    return sorted(result.ok().label for result in contract_schema().get_all_operations())


def role_headers(server: LiveServer, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    return {TOKEN_HEADER: server.users[role][1]}


def sent_role(server: LiveServer, request_headers: Any) -> str:
    """Who the request that actually went out speaks for (negative generation may drop or replace
    the token header)."""
    sent = request_headers.get(TOKEN_HEADER)
    for role in ("owner", "member"):
        if sent is not None and sent == server.users[role][1]:
            return role
    return "anonymous"


def allowed_statuses(label: str, role: str, form: str) -> set[int]:
    """What the contract allows `role` to get from `label` in wire form `form` (2xx bodies are checked
    against the schema, everything else against the envelope)."""
    if label in PUBLIC:
        return {200}
    if label == "POST /csp/reports" and form == WIRE_FORMAT_CODERD:
        return {200, 400, 413}  # public in coderd's form
    if role == "anonymous":
        return {401}
    if label in ("GET /deployment/config", "GET /deployment/stats") and role == "member":
        return {403}
    if label == "GET /deployment/stats":
        return {200, 400}  # 400 only until the first computation is cached
    if label == "POST /csp/reports":
        return {200, 400, 413}
    if label == "GET /users/{user}/keys/tokens/tokenconfig":
        # 400 unknown or unreadable user; 404 when the generated name holds an encoded "/".
        return {200, 400, 404}
    return {200}


def check_response(server: LiveServer, case: Any, response: requests.Response, label: str) -> None:
    role = sent_role(server, response.request.headers)
    status = response.status_code
    assert status < 500, f"{label} as {role}: {status} {response.text[:300]}"
    form = server.env.get("CODERAPI_WIRE_FORMAT", WIRE_FORMAT_REFERENCE)
    assert status in allowed_statuses(label, role, form), f"{label} as {role}: {status} {response.text[:300]}"
    if 200 <= status < 300:
        case.validate_response(
            response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
        )
        assert response.content.endswith(b"\n")
        return
    doc = assert_envelope(status, response.headers, response.content)
    if status == 401:
        assert doc["message"] == SIGNED_OUT_MESSAGE, doc
    elif status == 403:
        assert doc["message"] == FORBIDDEN, doc
    elif status == 404:
        assert doc["message"] == ROUTE_NOT_FOUND, doc
    elif status == 400 and label == "GET /deployment/stats":
        assert doc["message"] == STATS_STILL_PROCESSING, doc


def fuzz(
    server: LiveServer,
    session: requests.Session,
    schema: Any,
    label: str,
    role: str,
    mode: GenerationMode,
    examples: int,
    base_url: str,
) -> int:
    """Run `examples` generated cases of `label` as `role`; returns how many were sent."""
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    headers = role_headers(server, role)
    sent = []

    @hypothesis_settings(examples)
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=10)
        sent.append(response.status_code)
        check_response(server, case, response, label)

    run()
    return len(sent)


def fuzz_contract(
    server: LiveServer, session: requests.Session, label: str, role: str, mode: GenerationMode, examples: int
) -> int:
    """`fuzz` with the contract's document, against the server's /api/v2."""
    return fuzz(server, session, contract_schema(), label, role, mode, examples, server.url + BASE_PATH)


def assert_still_serving(server: LiveServer) -> None:
    status, _headers, body = server.request("GET", BASE_PATH + "/buildinfo")
    assert status == 200 and json.loads(body)["deployment_id"]
    assert server.process.alive()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("label", operation_labels())
def test_contract_operations(server: LiveServer, session: requests.Session, label: str, role: str) -> None:
    sent = fuzz_contract(server, session, label, role, GenerationMode.POSITIVE, POSITIVE_EXAMPLES)
    assert sent >= 1
    assert_still_serving(server)


@pytest.mark.parametrize("role", ROLES)
def test_csp_reports_with_schema_violating_bodies(server: LiveServer, session: requests.Session, role: str) -> None:
    label = "POST /csp/reports"
    sent = fuzz_contract(server, session, label, role, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)
    assert sent >= NEGATIVE_EXAMPLES // 2
    assert_still_serving(server)


def test_every_contract_operation_is_fuzzed() -> None:
    # The ten operations of the seed document; a spec file that lost one would silently shrink the run.
    assert operation_labels() == sorted(
        [
            "GET /",
            "GET /buildinfo",
            "POST /csp/reports",
            "GET /deployment/config",
            "GET /deployment/ssh",
            "GET /deployment/stats",
            "GET /experiments",
            "GET /experiments/available",
            "GET /updatecheck",
            "GET /users/{user}/keys/tokens/tokenconfig",
        ]
    )


def operation_label(result: Ok[APIOperation[Any, Any, Any, Any]] | Err[Any]) -> str:
    """The label of an operation the spec loader read; fails on one it could not read."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok().label


def test_generated_spec(form_server: LiveServer, session: requests.Session) -> None:
    """With swagger.enable the server publishes its generated spec at /swagger/doc.json, describing the
    bytes of its wire form: every operation in it is fuzzed the same way, in both forms."""
    server = form_server
    status, _headers, body = server.request("GET", "/swagger/doc.json")
    assert status == 200, body[:300]
    doc = json.loads(body)
    schema = schemathesis.openapi.from_dict(doc)
    base = server.url + (doc.get("basePath") or BASE_PATH)
    labels = sorted(operation_label(result) for result in schema.get_all_operations())
    assert labels, "the generated spec has no operations"
    for label in labels:
        for role in ROLES:
            fuzz(server, session, schema, label, role, GenerationMode.POSITIVE, 10, base)
    assert_still_serving(server)
