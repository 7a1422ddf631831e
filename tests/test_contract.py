"""The tests' copy of the contract stays the contract."""

from __future__ import annotations

import pytest

from tests.contract import SPEC_SWAGGER_PATH, SWAGGER_PATH


def test_the_copy_matches_the_contract() -> None:
    if not SPEC_SWAGGER_PATH.exists():
        pytest.skip("the spec folder is not beside this checkout")
    assert SWAGGER_PATH.read_bytes() == SPEC_SWAGGER_PATH.read_bytes()
