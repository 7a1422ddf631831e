"""The contract's OpenAPI document, as the tests read it.

`tests/data/swagger-general.json` and `tests/data/deployment_options.json` are byte-for-byte copies of
the files of the same names in `../shared/spec/` (`test_the_copy_matches_the_contract` checks them
whenever the spec folder sits beside the checkout), so the suite needs nothing outside the repository.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

SWAGGER_PATH = pathlib.Path(__file__).parent / "data" / "swagger-general.json"
SPEC_SWAGGER_PATH = pathlib.Path(__file__).resolve().parents[2] / "shared" / "spec" / "swagger-general.json"
SWAGGER: dict[str, Any] = json.loads(SWAGGER_PATH.read_text(encoding="utf-8"))
# The contract's option data (`deployment_options.json`): coderd's field tree, omitempty and defaults.
OPTIONS_DATA_PATH = pathlib.Path(__file__).parent / "data" / "deployment_options.json"
SPEC_OPTIONS_DATA_PATH = SPEC_SWAGGER_PATH.parent / "deployment_options.json"
OPTIONS_DATA: list[dict[str, Any]] = json.loads(OPTIONS_DATA_PATH.read_text(encoding="utf-8"))


def definition_schema(name: str) -> dict[str, Any]:
    """A JSON schema for `definitions/<name>` that resolves the document's other definitions."""
    return {"$ref": f"#/definitions/{name}", "definitions": SWAGGER["definitions"]}
