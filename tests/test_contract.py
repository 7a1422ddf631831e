"""The tests' copy of the contract stays the contract."""

from __future__ import annotations

import pathlib

import pytest

from tests.contract import OPTIONS_DATA_PATH, SPEC_OPTIONS_DATA_PATH, SPEC_SWAGGER_PATH, SWAGGER_PATH


@pytest.mark.parametrize(
    ("copy", "original"), [(SWAGGER_PATH, SPEC_SWAGGER_PATH), (OPTIONS_DATA_PATH, SPEC_OPTIONS_DATA_PATH)]
)
def test_the_copy_matches_the_contract(copy: pathlib.Path, original: pathlib.Path) -> None:
    if not original.exists():
        pytest.skip("the spec folder is not beside this checkout")
    assert copy.read_bytes() == original.read_bytes()
