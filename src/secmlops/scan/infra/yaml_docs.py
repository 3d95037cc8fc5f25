"""Safe YAML loading with line numbers and bounds against alias bombs and deep nesting.

Documents are composed with PyYAML's pure-Python safe loader (no tags that build objects), their
expanded size is measured before anything walks them (a "billion laughs" file composes to a few
shared nodes but expands to billions), and mappings and sequences come back as `YamlMap` /
`YamlList`, which remember the 1-based line of themselves and of each key.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from secmlops.errors import ScanError

# A Kubernetes manifest rendered from a large chart has tens of thousands of nodes; a billion-laughs
# file has billions. The cap sits far above the first and far below the second.
MAX_EXPANDED_NODES = 2_000_000
# PyYAML's scanner slows down quadratically with flow nesting and its composer recurses: deep
# `[[[[...` is refused before parsing (real configuration nests flow collections a few levels).
MAX_FLOW_DEPTH = 100
FLOW_BRACKET = re.compile(r"[\[\]{}]")


class YamlMap(dict[Any, Any]):
    """A YAML mapping that knows the line where it starts and where each of its keys is."""

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        """The line of `key` (or of the mapping when the key is absent)."""
        return self.key_lines.get(key, self.line)

    def value_line(self, key: Any) -> int:
        """The first line of the value of `key` (a block scalar starts below its `|`)."""
        return self.value_lines.get(key, self.line_of(key))


class YamlList(list[Any]):
    """A YAML sequence that knows the line where it starts."""

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry line numbers."""


def _construct_map(loader: _LineLoader, node: MappingNode) -> Any:
    data = YamlMap(node.start_mark.line + 1)
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool | None):
            raise ScanError(f"line {key_node.start_mark.line + 1}: unsupported mapping key")
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = key_node.start_mark.line + 1
        block = isinstance(value_node, ScalarNode) and value_node.style in ("|", ">")
        data.value_lines[key] = value_node.start_mark.line + (2 if block else 1)


def _construct_seq(loader: _LineLoader, node: SequenceNode) -> Any:
    data = YamlList(node.start_mark.line + 1)
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


def _construct_tagged(loader: _LineLoader, suffix: str, node: Node) -> Any:
    """Application tags (!Ref, !!python/name:...) become plain data: read, never resolved."""
    if isinstance(node, MappingNode):
        return _construct_map(loader, node)
    if isinstance(node, SequenceNode):
        return _construct_seq(loader, node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
# The empty prefix matches every tag without a constructor of its own.
_LineLoader.add_multi_constructor("", _construct_tagged)


def _expanded_size(root: Node, limit: int) -> int:
    """Nodes the document has once every alias is expanded; raises past `limit` or on a cycle."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    # Iterative post-order walk: a hostile document may nest deeper than Python's recursion limit.
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > limit:
                raise ScanError(
                    f"YAML expands to more than {limit:,} nodes (alias bomb?); refused",
                    hint="anchors and aliases that multiply content are not accepted",
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in active:
            raise ScanError("YAML alias refers to itself (recursive structure); refused")
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _flow_too_deep(text: str, limit: int) -> bool:
    """Whether [ ] and { } nest deeper than `limit` (quotes ignored: an overestimate is stricter)."""
    depth = 0
    for match in FLOW_BRACKET.finditer(text):
        if match.group(0) in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth = max(0, depth - 1)
    return False


def load_yaml_documents(text: str, max_nodes: int = MAX_EXPANDED_NODES) -> list[Any]:
    """Every document of a (multi-document) YAML text, with line-aware mappings and sequences.

    Raises ScanError for malformed YAML, alias bombs, recursion and nesting too deep to walk.
    """
    if _flow_too_deep(text, MAX_FLOW_DEPTH):
        raise ScanError(f"YAML nested more than {MAX_FLOW_DEPTH} levels deep; refused")
    documents: list[Any] = []
    budget = max_nodes
    try:
        # The reader rejects non-printable characters as soon as it is built.
        loader = _LineLoader(text)
    except yaml.YAMLError as exc:
        raise ScanError(f"malformed YAML: {exc}".splitlines()[0]) from None
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            budget -= _expanded_size(node, budget)
            documents.append(loader.construct_document(node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ScanError(f"malformed YAML: {where}{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ScanError(f"malformed YAML: {exc}".splitlines()[0]) from None
    except RecursionError:
        raise ScanError("YAML nested too deeply to check; refused") from None
    finally:
        loader.dispose()
    return documents
