"""Read a YAML file the way a person wrote it: every scalar as its exact text, every key with its line.

YAML 1.1 turns an unquoted ``03`` into 3, ``010`` into 8, ``1.50`` into 1.5 and ``no`` into False, so a
material or auxiliary-property code could change on the way in. Here a scalar stays the text written
(``03`` stays ``"03"``); the pydantic models that read the data turn text into numbers and booleans
only where a field is one. Only null (``~``, ``null``, nothing) keeps its YAML meaning. A key written
twice is an error (YAML keeps the last one silently), and every key and list item records its line,
so an error can name ``file:line``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Location = tuple[str | int, ...]


class YamlTextError(ValueError):
    """A file that is not YAML, or that writes a key twice; the message starts with ``file:line``."""


@dataclass(frozen=True)
class YamlText:
    path: Path
    data: Any
    lines: dict[Location, int]  # location of a key or list item -> its 1-based line

    def line_of(self, location: Sequence[str | int]) -> int:
        """The line of ``location``, or of its nearest parent written in the file (1: the top)."""
        location = tuple(location)
        while location:
            if location in self.lines:
                return self.lines[location]
            location = location[:-1]
        return 1


def _null(node: yaml.ScalarNode) -> bool:
    return node.tag == "tag:yaml.org,2002:null"


def _build(node: yaml.Node, location: Location, lines: dict[Location, int], path: Path) -> Any:
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlTextError(f"{path}:{key_node.start_mark.line + 1}: a key must be plain text")
            key = key_node.value
            if key in mapping:
                raise YamlTextError(
                    f"{path}:{key_node.start_mark.line + 1}: {'.'.join(map(str, (*location, key)))}: "
                    f"written twice (first on line {lines[(*location, key)]})"
                )
            lines[(*location, key)] = key_node.start_mark.line + 1
            mapping[key] = _build(value_node, (*location, key), lines, path)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*location, index)] = item.start_mark.line + 1
            items.append(_build(item, (*location, index), lines, path))
        return items
    return None if _null(node) else node.value


# libyaml's composer where PyYAML was built with it (the wheels are): nodes with the same marks, ten
# times faster; every task process parses every scheme and definition when it loads the DAG file
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_text(path: Path) -> YamlText:
    """Parse ``path``; raises ``YamlTextError`` naming the file and line of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlTextError(f"{path}: file not found") from None
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise YamlTextError(f"{path}{line}: not valid YAML: {exc.problem or exc}") from None
    lines: dict[Location, int] = {}
    data = None if node is None else _build(node, (), lines, path)
    return YamlText(path, data, lines)
