"""YAML the way mesh-audit reads it, checked before it is built.

Kubernetes keeps timestamps as strings (`ManifestLoader` does too), and YAML anchors and
aliases let a few lines describe a document of billions of nodes ("billion laughs") or
one that contains itself: both are refused before construction. `load_yaml` reads
mesh-audit's own one-document files (rules, configuration) with errors at their line.
"""

from __future__ import annotations

import yaml

from auditor.core.errors import UsageError

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

# Anything that expands beyond this many nodes is refused before it is built.
MAX_YAML_NODES = 2_000_000


class ManifestLoader(_BaseLoader):
    """Safe loader that leaves timestamps as strings, as Kubernetes' own YAML→JSON step does."""


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


class RecursiveAlias(Exception):
    pass


def expanded_size(node, limit: int) -> int:
    """Nodes a YAML node graph has once aliases are expanded (shared nodes counted each
    time they are used), computed without expanding; stops counting past `limit`.
    Raises RecursiveAlias for a node that contains itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if isinstance(current, yaml.ScalarNode):
            sizes[key] = 1
            continue
        children = [c for pair in current.value for c in pair] if isinstance(current, yaml.MappingNode) else current.value
        if children_done:
            open_nodes.discard(key)
            sizes[key] = min(1 + sum(sizes[id(c)] for c in children), limit + 1)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise RecursiveAlias()
        open_nodes.add(key)
        stack.append((current, True))
        for child in children:
            if id(child) in open_nodes:
                raise RecursiveAlias()
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(node)]


def check_aliases(node, name: str) -> None:
    """Refuse a composed YAML document whose aliases recurse or expand past MAX_YAML_NODES."""
    if node is None:
        return
    try:
        too_big = expanded_size(node, MAX_YAML_NODES) > MAX_YAML_NODES
    except RecursiveAlias:
        raise UsageError("the document contains itself through an alias", name, node.start_mark.line + 1) from None
    if too_big:
        raise UsageError(
            f"the document's aliases expand to more than {MAX_YAML_NODES:,} nodes (a YAML alias bomb?)",
            name, node.start_mark.line + 1,
        )


def check_duplicate_keys(node, name: str) -> None:
    """Refuse a mapping that names a key twice, as Kubernetes' YAML reader does (the last
    one would silently win), naming both lines. Merge keys (`<<`) may be overridden."""
    stack = [node] if node is not None else []
    seen_nodes: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen_nodes or isinstance(current, yaml.ScalarNode):
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first_lines: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if key.value in first_lines:
                        raise UsageError(f"the key '{key.value}' appears twice in one mapping (first at line "
                                         f"{first_lines[key.value]}); only one may stay", name, line)
                    first_lines[key.value] = line
                stack += [key, value]
        else:
            stack += current.value


def load_yaml(text: str, name: str, loader=ManifestLoader) -> tuple:
    """(node tree, data) of a one-document YAML file, refusing alias bombs and duplicate
    keys; a syntax error, or a character YAML does not allow, is a UsageError at its line."""
    try:
        node = yaml.compose(text, Loader=loader)
        check_aliases(node, name)
        check_duplicate_keys(node, name)
        data = yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise UsageError(f"invalid YAML: {err.problem or err.context}", name, mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as err:  # a control character or a byte that is not text
        raise reader_error(err, text, name) from None
    except yaml.YAMLError as err:
        raise UsageError(f"invalid YAML: {err}", name) from None
    return node, data


def reader_error(err: yaml.reader.ReaderError, text: str, name: str, offset: int = 0) -> UsageError:
    """A character YAML does not allow (a control character, say), at its line."""
    line = text.count("\n", 0, err.position) + 1 + offset if isinstance(err.position, int) else None
    code = ord(err.character) if isinstance(err.character, str) else err.character
    what = f"U+{code:04X}" if isinstance(code, int) else repr(err.character)
    return UsageError(f"invalid YAML: {what} is not allowed in YAML (a control character or binary data?)", name, line)
