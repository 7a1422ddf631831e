"""coderapi.config.effective: the typed options read exactly what `values.get` returns."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from typing import Any

import pytest

from coderapi.config import DeploymentValues, load
from coderapi.config.effective import Effective, effective
from coderapi.config.options import OPTIONS_BY_FIELD


def leaves(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(attribute path, value, declared type) of every leaf below the dataclass `obj`."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if type(value).__module__ == Effective.__module__:  # a group
            yield from leaves(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, value, hints[f.name]


# Attribute path -> `config` path, as effective() reads them.
MAPPING = {attr: path for attr, path, _ in leaves(effective(lambda path: path))}


def test_every_leaf_reads_one_option() -> None:
    assert all(path in OPTIONS_BY_FIELD for path in MAPPING.values())
    assert len(set(MAPPING.values())) == len(MAPPING)


@pytest.mark.parametrize(
    "argv",
    [
        (),
        (
            "--tls-enable",
            "--tls-cert-file=a.pem,b.pem",
            "--tls-key-file=a.key",
            "--prometheus-enable",
            "--proxy-trusted-origins=10.0.0.0/8",
            "--proxy-trusted-headers=X-Forwarded-For",
            "--access-url=https://coder.example.com",
            "--postgres-url=postgres://localhost/coder",
            "--log-filter=.*",
            "--verbose",
        ),
    ],
)
def test_values_and_types_are_those_of_get(argv: tuple[str, ...]) -> None:
    values: DeploymentValues = load(argv, {})
    assert isinstance(values.effective, Effective)
    got = {attr: (value, kind) for attr, value, kind in leaves(values.effective)}
    assert got.keys() == MAPPING.keys()
    for attr, (value, kind) in got.items():
        assert value is values.get(MAPPING[attr]), attr
        origin = typing.get_origin(kind) or kind
        assert type(value) is origin, attr
        if origin is list:
            assert all(type(item) is str for item in value), attr


def test_frozen() -> None:
    values = load((), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        values.effective.tls.enable = True  # type: ignore[misc]
