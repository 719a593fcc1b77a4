"""The package's shape: imports point down the pipeline (collect → snapshot → facts →
rules → findings → reporters), there are no import circles, and modules stay small
enough to read in one sitting. An AST walk over auditor/, no imports executed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "auditor"

# Each module's layer; a module may import its own layer and those below it, never above.
# Within a layer, the no-circles test keeps imports acyclic.
LAYERS = [
    ("core", ["auditor", "auditor.core", "auditor.schemas"]),
    ("model", ["auditor.model"]),
    ("collect", ["auditor.collect"]),
    ("facts", ["auditor.facts"]),
    ("rules", ["auditor.rulebook"]),
    ("findings", ["auditor.engine"]),
    ("reporters", ["auditor.reporters"]),
    ("gate", ["auditor.gate"]),
    ("library", ["auditor.api", "auditor.explain", "auditor.ruletest", "auditor.multicluster", "auditor.plan",
                 "auditor.change", "auditor.serve"]),
    ("command line", ["auditor.cli", "auditor.__main__"]),
]
# Narrower than the layers: what must never be reached from here, even indirectly by layer.
FORBIDDEN = {
    "auditor.collect": ("auditor.facts", "auditor.model.report", "auditor.rulebook", "auditor.engine", "auditor.reporters"),
    "auditor.facts": ("auditor.collect", "auditor.rulebook", "auditor.engine", "auditor.model.report"),
    "auditor.rulebook": ("auditor.facts", "auditor.engine", "auditor.collect"),
    "auditor.reporters": ("auditor.facts", "auditor.engine", "auditor.collect", "auditor.rulebook", "auditor.api"),
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict) -> set[str]:
    """The auditor modules `name` imports (resolved to modules that exist), anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("auditor"):
                out.add(target)
    return out


def layer_of(name: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank is not None, f"{name} is in no layer: add it to LAYERS"
    return rank


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_imports_point_down_the_pipeline(graph):
    upward = []
    for name, targets in graph.items():
        for target in sorted(targets):
            if target == "auditor" or target.startswith(name + "."):
                continue  # the package itself (version), or a module's own submodules
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
            for prefix, banned in FORBIDDEN.items():
                if name.startswith(prefix) and target.startswith(banned):
                    upward.append(f"{name} must not import {target}")
    assert upward == []


def test_no_import_circles(graph):
    """Tarjan's strongly connected components over the import graph."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert circles == []


def test_the_walk_sees_a_circle_and_an_upward_import(tmp_path):
    """The two tests above would catch what they are for (on a made-up package)."""
    (tmp_path / "auditor" / "collect").mkdir(parents=True)
    (tmp_path / "auditor" / "facts").mkdir()
    (tmp_path / "auditor" / "__init__.py").write_text("")
    (tmp_path / "auditor" / "collect" / "__init__.py").write_text("from auditor.facts import thing\n")
    (tmp_path / "auditor" / "facts" / "__init__.py").write_text("from auditor.collect import other\n")
    known = {"auditor.collect": tmp_path / "auditor/collect/__init__.py", "auditor.facts": tmp_path / "auditor/facts/__init__.py"}
    assert imports("auditor.collect", known["auditor.collect"], known) == {"auditor.facts"}
    assert layer_of("auditor.facts") > layer_of("auditor.collect")


def test_modules_and_functions_stay_small():
    too_big = []
    for name, path in modules().items():
        text = path.read_text()
        if len(text.splitlines()) >= 400:
            too_big.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                too_big.append(f"{name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert too_big == []


def test_every_package_is_shipped():
    """pyproject lists packages by hand (the rules directory is mapped in): a new folder
    under auditor/ must be listed, or an installed mesh-audit lacks it."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^packages = \[(.*?)\]", text, re.S | re.M).group(1)  # tomllib is 3.11+
    listed = set(re.findall(r'"([a-z_.]+)"', block))
    folders = {".".join(p.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py") for p in [p.parent]}
    assert folders - listed == set()
