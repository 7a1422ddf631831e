"""The OpenAPI document (`/swagger/doc.json`): generated from the marshmallow schemas, each response
schema structurally equal to Coder's own document (tests/data/swagger-general.json, a copy of the contract's)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from coderapi import openapi
from tests.conftest import MakeApp
from tests.contract import SWAGGER, SWAGGER_PATH

CONTRACT: dict[str, Any] = SWAGGER
OPERATIONS = [(p, m) for p, ops in CONTRACT.get("paths", {}).items() for m in ops]


@pytest.fixture
def swagger_app(make_app: MakeApp) -> Flask:
    return make_app(argv=["--swagger-enable"])


@pytest.fixture
def doc(swagger_app: Flask) -> dict[str, Any]:
    resp = swagger_app.test_client().get("/swagger/doc.json")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    body: dict[str, Any] = json.loads(resp.data)
    return body


def normalize(schema: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The structure of a schema with every `$ref` resolved: types, property names, array items and
    typed additionalProperties. Descriptions, enums, formats and definition names are not structure."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return {"cycle": name}
        return normalize(defs[name], defs, (*seen, name))
    if len(schema.get("allOf", ())) == 1:
        return normalize(schema["allOf"][0], defs, seen)
    kind = schema.get("type") or ("object" if "properties" in schema or "additionalProperties" in schema else None)
    out: dict[str, Any] = {"type": kind}
    if kind == "object":
        if schema.get("properties"):  # `{}` is no properties, as is leaving the keyword out
            out["properties"] = {k: normalize(v, defs, seen) for k, v in schema["properties"].items()}
        extra = schema.get("additionalProperties")
        # `{}` allows anything, which is what an object without the keyword allows too.
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = normalize(extra, defs, seen)
    if kind == "array":
        out["items"] = normalize(schema.get("items", {}), defs, seen)
    return out


def test_the_contract_is_available() -> None:
    assert len(OPERATIONS) == 10, f"{SWAGGER_PATH} changed"


def test_every_operation_is_documented(doc: dict[str, Any]) -> None:
    ours = sorted((p, m) for p, ops in doc["paths"].items() for m in ops)
    assert ours == sorted(OPERATIONS)
    assert doc["swagger"] == "2.0"
    assert doc["basePath"] == "/api/v2"


@pytest.mark.wire_format("reference")
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_response_schema_matches_the_contract(doc: dict[str, Any], path: str, method: str) -> None:
    theirs = CONTRACT["paths"][path][method]
    mine = doc["paths"][path][method]
    assert sorted(mine["responses"]) == sorted(theirs["responses"])
    their_schema = theirs["responses"]["200"].get("schema")
    my_schema = mine["responses"]["200"].get("schema")
    if their_schema is None:
        assert my_schema is None
        return
    assert normalize(my_schema, doc["definitions"]) == normalize(their_schema, CONTRACT["definitions"])


@pytest.mark.wire_format("reference")
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_security_and_operation_ids_match_the_contract(doc: dict[str, Any], path: str, method: str) -> None:
    theirs = CONTRACT["paths"][path][method]
    mine = doc["paths"][path][method]
    assert mine["operationId"] == theirs["operationId"]
    assert mine.get("security") == theirs.get("security")
    assert doc["securityDefinitions"]["CoderSessionToken"]["name"] == "Coder-Session-Token"


def test_the_normalizer_sees_a_difference() -> None:
    # The comparison above would pass vacuously if normalize() dropped structure.
    a = {"type": "object", "properties": {"x": {"type": "string"}}}
    b = {"type": "object", "properties": {"x": {"type": "integer"}}}
    c = {"type": "object", "properties": {"y": {"type": "string"}}}
    assert normalize(a, {}) != normalize(b, {})
    assert normalize(a, {}) != normalize(c, {})


@pytest.mark.parametrize(
    ("path", "method", "auth"),
    [
        ("/api/v2/buildinfo", "get", None),
        ("/api/v2/", "get", None),
        ("/api/v2/deployment/config", "get", "owner"),
        ("/api/v2/deployment/ssh", "get", "member"),
        ("/api/v2/experiments", "get", "member"),
        ("/api/v2/experiments/available", "get", "member"),
        ("/api/v2/users/me/keys/tokens/tokenconfig", "get", "member"),
    ],
)
def test_live_responses_validate_against_the_generated_document(
    swagger_app: Flask,
    doc: dict[str, Any],
    owner_token: str,
    member_token: str,
    path: str,
    method: str,
    auth: str | None,
) -> None:
    client: FlaskClient = swagger_app.test_client()
    headers = {"Coder-Session-Token": owner_token if auth == "owner" else member_token} if auth else {}
    resp = client.open(path, method=method.upper(), headers=headers)
    assert resp.status_code == 200
    key = path.removeprefix("/api/v2") or "/"
    key = key.replace("/users/me/", "/users/{user}/")
    schema = {**doc["paths"][key][method]["responses"]["200"]["schema"], "definitions": doc["definitions"]}
    jsonschema.validate(json.loads(resp.data), nullable(schema))


def nullable(schema: Any) -> Any:
    """Swagger 2's `x-nullable: true` (how apispec writes a field that may be null, as coderd's nil
    arrays are) as JSON Schema's `"type": [type, "null"]`, which jsonschema understands."""
    if isinstance(schema, list):
        return [nullable(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: nullable(value) for key, value in schema.items()}
    if out.pop("x-nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def test_swagger_page_and_redirect(swagger_app: Flask) -> None:
    client = swagger_app.test_client()
    resp = client.get("/swagger")
    assert resp.status_code == 301
    assert resp.headers["Location"].endswith("/swagger/")
    page = client.get("/swagger/")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    text = page.data.decode()
    assert "/swagger/doc.json" in text
    for _method, path, _summary, _auth in openapi.operations():
        assert f"/api/v2{path}".replace("{", "&#x7b;") in text or f"/api/v2{path}" in text


@pytest.mark.parametrize("path", ["/swagger", "/swagger/", "/swagger/doc.json", "/swagger/index.html"])
def test_swagger_disabled_by_default(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404
    assert json.loads(resp.data) == {"message": "Swagger documentation is disabled."}


def test_swagger_needs_no_token(swagger_app: Flask) -> None:
    assert swagger_app.test_client().get("/swagger/doc.json", headers={"Coder-Session-Token": "bad"}).status_code == 200
