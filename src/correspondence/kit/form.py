"""Form fields with .NET model-binding names → the nested dict a JSON body would have
(api.md §3.2): `correspondence.content.attachments[0].fileName`, `recipients[0]` or repeated
`recipients`, `correspondence.propertyList[key]` or `correspondence.propertyList.key`. Names match
case-insensitively (the wire models take any case); dictionary keys keep theirs. A name may carry
the bound parameter's name as a prefix, as .NET binding allows (`request.Recipients[0]`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from correspondence.kit.numbers import is_ascii_digits

_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")
_MAX_DEPTH = 16
_MAX_INDEX_DIGITS = 9  # a list index; anything longer (or '²') is a name, which the model refuses


@dataclass
class _Node:
    children: dict[str | int, _Node] = field(default_factory=dict)
    values: list[str] = field(default_factory=list)
    indexed: bool = False  # children came from [n]


def _segments(key: str, dicts: frozenset[str]) -> list[tuple[str | int, bool]] | None:
    """(segment, came-from-brackets) pairs; names lower-cased except inside a dictionary."""
    out: list[tuple[str | int, bool]] = []
    pos = 0
    parent_is_dict = False
    path: list[str] = []
    while pos < len(key):
        if key[pos] == ".":
            pos += 1
            continue
        match = _SEGMENT.match(key, pos)
        if match is None:
            return None
        pos = match.end()
        name, bracket = match.group(1), match.group(2)
        if bracket is not None:
            if parent_is_dict:
                out.append((bracket, True))
            elif is_ascii_digits(bracket, _MAX_INDEX_DIGITS):
                out.append((int(bracket), True))
            else:
                out.append((bracket.lower(), True))
            parent_is_dict = False
            continue
        if parent_is_dict:
            out.append((name, False))
            parent_is_dict = False
            continue
        lowered = name.lower()
        out.append((lowered, False))
        path.append(lowered)
        parent_is_dict = ".".join(path) in dicts
    return out


def without_prefix(key: str, prefix: str) -> str:
    """`key` without a leading `prefix.` (any case), e.g. request.Correspondence.ResourceId."""
    n = len(prefix)
    if len(key) > n + 1 and key[n] == "." and key[:n].lower() == prefix:
        return key[n + 1 :]
    return key


def bind(
    fields: list[tuple[str, str]],
    *,
    lists: frozenset[str] = frozenset(),
    dicts: frozenset[str] = frozenset(),
    prefix: str | None = None,
) -> dict[str, Any]:
    """`lists`: dotted lower-case paths of lists of scalars (repeated names collect into them);
    `dicts`: paths of string maps (their keys keep their case); `prefix`: the lower-case name of
    the bound parameter, which names may start with (`request.`). An empty value is null, as .NET
    binds it, except inside a list."""
    root = _Node()
    for key, value in fields:
        if prefix is not None:
            key = without_prefix(key, prefix)
        segments = _segments(key, dicts)
        if not segments or len(segments) > _MAX_DEPTH:
            continue  # no model is that deep: not a name the request could mean
        node = root
        for segment, bracket in segments:
            child = node.children.get(segment)
            if child is None:
                child = node.children[segment] = _Node()
            if bracket and isinstance(segment, int):
                node.indexed = True
            node = child
        node.values.append(value)
    bound = _convert(root, "", lists)
    return bound if isinstance(bound, dict) else {}


def _convert(node: _Node, path: str, lists: frozenset[str]) -> Any:
    if node.children:
        if node.indexed and all(isinstance(k, int) for k in node.children):
            ordered = sorted(node.children.items(), key=lambda kv: int(kv[0]))
            return [_leaf_or_tree(child, path, lists) for _, child in ordered]
        return {
            str(k): _convert(child, f"{path}.{k}" if path else str(k), lists)
            for k, child in node.children.items()
        }
    if path in lists:
        return list(node.values)
    first = node.values[0] if node.values else ""
    return first if first != "" else None


def _leaf_or_tree(node: _Node, path: str, lists: frozenset[str]) -> Any:
    """An element of a list: a nested object, or a scalar kept as sent (empty stays empty)."""
    if node.children:
        return _convert(node, path, lists)
    return node.values[0] if node.values else ""
