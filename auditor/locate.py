"""Put a finding on the line of the field it is about, not only its object's first line:
a pull request that changes `to.operation.methods` on line 50 of a policy that starts on
line 35 gets its alert on line 50.

A rule names the fields (`fields:`, JSON Pointers); the first one its object has in the
source file places the finding. The file is read again with PyYAML's node API, which
keeps every key's line (JSON is YAML too), only for files that have such findings and
only up to a size; a source that is not YAML (a Helm template) is searched for the
field's key below the object's first line. Where nothing is found, the object's line stays.
"""

from __future__ import annotations

import os

import yaml

from auditor.report import Report
from auditor.yamlread import ManifestLoader

MAX_BYTES = 16 * 1024 * 1024  # larger sources (dumps) keep their objects' lines


def place_findings(report: Report) -> None:
    sources = _Sources()
    for finding in report.findings:
        if not finding.fields or finding.location is None or finding.location[0].startswith("<"):
            continue
        file, line = finding.location
        for pointer in finding.fields:
            found = sources.line_of(file, line, pointer)
            if found is not None:
                finding.location, finding.pointer = (file, found), pointer
                break


def _segments(pointer: str) -> list[str]:
    """RFC 6901: "/a/b~1c" -> ["a", "b/c"]."""
    if not pointer.startswith("/"):
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


class _Sources:
    def __init__(self) -> None:
        self._nodes: dict[str, dict[int, yaml.Node] | None] = {}
        self._lines: dict[str, list[str]] = {}

    def line_of(self, file: str, object_line: int, pointer: str) -> int | None:
        segments = _segments(pointer)
        if not segments:
            return None
        nodes = self._objects(file)
        if nodes is not None:
            node = nodes.get(object_line)
            return _walk(node, segments) if node is not None else None
        return self._search(file, object_line, segments)

    def _objects(self, file: str) -> dict[int, yaml.Node] | None:
        """Each object's node by the line it starts on (documents, and List items); None
        when the file is too big or is not YAML."""
        if file not in self._nodes:
            self._nodes[file] = _compose(file)
        return self._nodes[file]

    def _search(self, file: str, object_line: int, segments: list[str]) -> int | None:
        """The line, below the object's first, that starts the field's key (for a list item,
        its list's key), before the next document."""
        if file not in self._lines:
            try:
                with open(file, encoding="utf-8", errors="replace") as fh:
                    self._lines[file] = fh.read().splitlines()
            except OSError:
                self._lines[file] = []
        keys = [s for s in segments if not s.isdigit()]
        if not keys:
            return None
        key = keys[-1]
        for number in range(object_line, len(self._lines[file]) + 1):
            text = self._lines[file][number - 1].strip()
            if number > object_line and text.startswith("---"):
                return None
            if text.startswith((f"{key}:", f"- {key}:", f'"{key}":', f"'{key}':")):
                return number
        return None


def _compose(file: str) -> dict[int, yaml.Node] | None:
    try:
        if os.path.getsize(file) > MAX_BYTES:
            return None
        with open(file, encoding="utf-8-sig") as fh:
            roots = list(yaml.compose_all(fh.read(), Loader=ManifestLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None
    found: dict[int, yaml.Node] = {}
    for root in roots:
        if root is None:
            continue
        found.setdefault(root.start_mark.line + 1, root)
        items = _child(root, "items")
        if isinstance(items, yaml.SequenceNode):
            for item in items.value:
                found.setdefault(item.start_mark.line + 1, item)
    return found


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _walk(node: yaml.Node, segments: list[str]) -> int | None:
    """The line of the last key or list item the path reaches; None if it leaves the object."""
    line = None
    for segment in segments:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == segment), None)
            if match is None:
                return None
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and segment.isdigit() and int(segment) < len(node.value):
            node = node.value[int(segment)]
            line = node.start_mark.line + 1
        else:
            return None
    return line
