"""The checks of the four Validator-wrapped options (serpent's Validator)."""

from __future__ import annotations

import re

from coderapi.goformat import quote

_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def check_wildcard_hostname(value: str) -> None:
    """coderd's hostname-pattern rules for the wildcard access URL: `*.example.com`,
    `*--suffix.example.com`; empty is allowed."""
    if value == "":
        return
    pattern = value.lower()
    if "http:" in pattern or "https:" in pattern:
        raise ValueError(f"hostname pattern must not contain a scheme: {quote(pattern)}")
    if ":" in pattern:
        raise ValueError(f"hostname pattern must not contain a port: {quote(pattern)}")
    if pattern.startswith(".") or pattern.endswith("."):
        raise ValueError(f"hostname pattern must not start or end with a period: {quote(pattern)}")
    if "." not in pattern:
        raise ValueError(f"hostname pattern must contain at least two labels/segments: {quote(pattern)}")
    if pattern.count("*") != 1:
        raise ValueError(f"hostname pattern must contain exactly one asterisk: {quote(pattern)}")
    if not pattern.startswith("*"):
        raise ValueError(f"hostname pattern must only contain an asterisk at the beginning: {quote(pattern)}")
    for i, label in enumerate(pattern.split(".")):
        if i == 0:
            label = "a" + label[1:]  # the wildcard stands for at least one valid character
        if not _HOST_LABEL.fullmatch(label) or len(label) > 63:
            raise ValueError(f"invalid hostname label in pattern {quote(pattern)}")


AGENT_STATS_LABELS = ("agent_name", "template_name", "username", "workspace_name")


def check_aggregation_labels(values: list[str]) -> None:
    for label in values:
        if label not in AGENT_STATS_LABELS:
            raise ValueError(f"label {quote(label)} is not valid, accepted labels: {', '.join(AGENT_STATS_LABELS)}")


PROVISIONER_TYPES = ("terraform", "echo")


def check_provisioner_types(values: list[str]) -> None:
    for value in values:
        if value not in PROVISIONER_TYPES:
            raise ValueError(f"provisioner type {quote(value)} is not supported")


def check_positive(value: int) -> None:
    if value <= 0:
        raise ValueError("must be greater than zero")
