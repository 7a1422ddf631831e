"""YAML nodes as configuration reads them: `yaml.compose` keeps each scalar's source text, as yaml.v3
nodes do, and the decoders turn nodes into strings, bools and string lists as yaml.v3 decodes them."""

from __future__ import annotations

import re

import yaml

from coderapi.goformat import quote

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_YAML_TRUE = {"true", "yes", "on", "y"}


# Text PyYAML quotes from the document in a problem (an alias or tag name); a one-character token such
# as ':' or '\\t', or a token kind such as '<scalar>', says what is wrong without revealing a value.
_YAML_QUOTED_TEXT = re.compile(r"\s*'(?!<)[^']{3,}'")


def compose_yaml(text: str) -> yaml.Node | None:
    """One YAML document as a node tree, or None when the text holds no document. A syntax error is a
    ValueError naming the problem, line and column, never PyYAML's snippet of the line: the line can
    hold a secret."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        problem = _YAML_QUOTED_TEXT.sub("", err.problem or err.context or "syntax error")
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"invalid YAML: {' '.join(problem.split())}{where}") from None
    except yaml.reader.ReaderError as err:
        raise ValueError(f"invalid YAML: a character YAML does not allow at offset {err.position}") from None
    except yaml.YAMLError:
        raise ValueError("invalid YAML") from None


def is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG)


def kind_name(node: yaml.Node) -> str:
    return {yaml.ScalarNode: "scalar", yaml.SequenceNode: "sequence", yaml.MappingNode: "mapping"}.get(
        type(node), "node"
    )


def decode_str(node: yaml.Node | None) -> str:
    if is_null(node):
        return ""
    assert node is not None
    if not isinstance(node, yaml.ScalarNode):
        raise ValueError(f"cannot decode a YAML {kind_name(node)} into a string")
    return str(node.value)


def decode_bool(node: yaml.Node | None) -> bool:
    if is_null(node):
        return False
    assert node is not None
    if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
        return str(node.value).lower() in _YAML_TRUE
    raise ValueError(f"cannot decode YAML {quote(str(getattr(node, 'value', '')))} into a bool")


def decode_str_list(node: yaml.Node | None) -> list[str]:
    if is_null(node):
        return []
    assert node is not None
    if not isinstance(node, yaml.SequenceNode):
        raise ValueError(f"cannot decode a YAML {kind_name(node)} into a list of strings")
    return [decode_str(item) for item in node.value]
