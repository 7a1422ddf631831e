"""The contract's OpenAPI document, as the tests read it.

`tests/data/swagger-general.json` is a byte-for-byte copy of `../shared/spec/swagger-general.json`
(`test_the_copy_matches_the_contract` checks it whenever the spec folder sits beside the checkout), so
the suite needs nothing outside the repository.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

SWAGGER_PATH = pathlib.Path(__file__).parent / "data" / "swagger-general.json"
SPEC_SWAGGER_PATH = pathlib.Path(__file__).resolve().parents[2] / "shared" / "spec" / "swagger-general.json"
SWAGGER: dict[str, Any] = json.loads(SWAGGER_PATH.read_text(encoding="utf-8"))


def definition_schema(name: str) -> dict[str, Any]:
    """A JSON schema for `definitions/<name>` that resolves the document's other definitions."""
    return {"$ref": f"#/definitions/{name}", "definitions": SWAGGER["definitions"]}
