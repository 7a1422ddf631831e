"""Semantic version comparison with Go's `golang.org/x/mod/semver` rules, as coderd compares releases.

Those rules differ from PEP 440 and from plain SemVer 2.0: the `v` prefix is required, `vMAJOR` and
`vMAJOR.MINOR` are shorthands for `.0`, build metadata is ignored, and an invalid string compares
lower than every valid one and equal to every other invalid one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class _Parsed:
    major: str
    minor: str
    patch: str
    prerelease: str  # with its leading "-", or ""


def _digits(v: str) -> tuple[str, str] | None:
    """A decimal number without leading zeros at the start of `v`, and the rest."""
    i = 0
    while i < len(v) and v[i].isascii() and v[i].isdigit():
        i += 1
    if i == 0 or (v[0] == "0" and i != 1):
        return None
    return v[:i], v[i:]


def _ident_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "-")


def _bad_num(ident: str) -> bool:
    return ident.isascii() and ident.isdigit() and len(ident) > 1 and ident[0] == "0"


def _dotted(v: str, stop: str, numeric_check: bool) -> tuple[str, str] | None:
    """A `-prerelease` or `+build` part at the start of `v` (which starts with its sign), and the rest."""
    i = start = 1
    while i < len(v) and v[i] != stop:
        c = v[i]
        if not _ident_char(c) and c != ".":
            return None
        if c == ".":
            if start == i or (numeric_check and _bad_num(v[start:i])):
                return None
            start = i + 1
        i += 1
    if start == i or (numeric_check and _bad_num(v[start:i])):
        return None
    return v[:i], v[i:]


def _parse(v: str) -> _Parsed | None:
    if not v or v[0] != "v":
        return None
    nums: list[str] = []
    rest = v[1:]
    while len(nums) < 3:
        got = _digits(rest)
        if got is None:
            return None
        num, rest = got
        nums.append(num)
        if len(nums) < 3:
            if rest == "":  # `vMAJOR` and `vMAJOR.MINOR` stand for `.0`
                nums += ["0"] * (3 - len(nums))
            elif rest[0] != ".":
                return None
            else:
                rest = rest[1:]
    prerelease = ""
    if rest.startswith("-"):
        got = _dotted(rest, "+", numeric_check=True)
        if got is None:
            return None
        prerelease, rest = got
    if rest.startswith("+"):
        if _dotted(rest, "", numeric_check=False) is None:
            return None
        rest = ""  # build metadata runs to the end and is ignored
    if rest:
        return None
    return _Parsed(nums[0], nums[1], nums[2], prerelease)


def _compare_int(x: str, y: str) -> int:
    if x == y:
        return 0
    if len(x) != len(y):
        return -1 if len(x) < len(y) else 1
    return -1 if x < y else 1


def _compare_prerelease(x: str, y: str) -> int:
    if x == y:
        return 0
    if x == "":
        return 1
    if y == "":
        return -1
    xs, ys = x[1:].split("."), y[1:].split(".")
    for dx, dy in zip(xs, ys, strict=False):
        if dx == dy:
            continue
        nx, ny = dx.isdigit(), dy.isdigit()
        if nx != ny:
            return -1 if nx else 1
        if nx and len(dx) != len(dy):
            return -1 if len(dx) < len(dy) else 1
        return -1 if dx < dy else 1
    if len(xs) == len(ys):
        return 0
    return -1 if len(xs) < len(ys) else 1


def compare(v: str, w: str) -> int:
    """-1, 0 or +1 as `v` is lower than, equal to or greater than `w` (Go's `semver.Compare`)."""
    pv, pw = _parse(v), _parse(w)
    if pv is None and pw is None:
        return 0
    if pv is None:
        return -1
    if pw is None:
        return 1
    for a, b in ((pv.major, pw.major), (pv.minor, pw.minor), (pv.patch, pw.patch)):
        c = _compare_int(a, b)
        if c:
            return c
    return _compare_prerelease(pv.prerelease, pw.prerelease)


def release_version(version: str) -> str:
    """The version compared with releases: cut at the first `-`, as coderd's update check does."""
    return version.split("-", 1)[0]
