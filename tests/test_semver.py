"""coderapi.semver: the version a build compares with releases."""

from __future__ import annotations

import pytest

from coderapi import semver


@pytest.mark.parametrize(
    ("version", "release"),
    [("v2.29.0", "v2.29.0"), ("v2.29.0+abc1234", "v2.29.0+abc1234"), ("v2.29.0-devel+abc1234", "v2.29.0")],
)
def test_release_version_cuts_at_the_first_dash(version: str, release: str) -> None:
    assert semver.release_version(version) == release
