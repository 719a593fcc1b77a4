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
    ("library", ["auditor.api", "auditor.pipeline", "auditor.explain", "auditor.ruletest", "auditor.multicluster", "auditor.plan",
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


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_plans_model_and_renderers_load_no_facts(graph):
    """A plan is read and rendered without the machinery that made it (facts, rules)."""
    for name in ("auditor.plan.model", "auditor.plan.render", "auditor.plan.html", "auditor.plan.text"):
        assert {m for m in reachable(graph, name) if m.startswith(("auditor.facts", "auditor.rulebook"))} == set(), name


def test_plan_asks_the_facts_through_one_module():
    """plan reaches facts only through auditor.facts.questions, and only for the names it
    declares in __all__: what plan needs of the facts is listed in one place."""
    door = ast.parse((PACKAGE / "facts" / "questions.py").read_text())
    declared = next(ast.literal_eval(node.value) for node in door.body if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets))
    reached = []
    for path in sorted((PACKAGE / "plan").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("auditor.facts"):
                if node.module != "auditor.facts.questions":
                    reached.append(f"{path.name} imports {node.module}")
                reached += [f"{path.name} imports {a.name}, which questions does not declare"
                            for a in node.names if a.name not in declared]
            elif isinstance(node, ast.Import):
                reached += [f"{path.name} imports {a.name}" for a in node.names if a.name.startswith("auditor.facts")]
    assert reached == []
    assert 10 <= len(declared) <= 20  # a door, not a second facts package


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


def _declared(tree: ast.Module) -> set[str]:
    """The attribute names a module's own classes declare: class-level names, __slots__,
    and what their methods (or a method building a copy, `out`) assign on an instance."""
    names = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for node in ast.walk(cls):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", "out"):
                names.add(node.attr)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        names.add(target.id)
                        if target.id == "__slots__" and isinstance(node.value, (ast.Tuple, ast.List)):
                            names.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
    return names


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text()) for name, path in modules().items()}


def test_no_module_reaches_into_another_modules_private_names(trees):
    """A name starting with `_` is its module's own: not imported elsewhere, and not read
    or set on an object (`obj._cache`) outside the module whose class has it."""
    reaches = []
    for name, tree in trees.items():
        own = _declared(tree) | {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        outside = ("self", "cls") + _outside_modules(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("auditor"):
                reaches += [f"{name}:{node.lineno} imports {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and not (isinstance(node.value, ast.Name) and node.value.id in outside) \
                    and node.attr not in own:
                reaches.append(f"{name}:{node.lineno} reaches .{node.attr}")
    assert reaches == []


def _outside_modules(tree: ast.Module) -> tuple[str, ...]:
    """The names a module binds to modules that are not mesh-audit's (os, kube_config):
    what they keep private is another project's business, not this test's."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(a.asname or a.name).partition(".")[0] for a in node.names if not a.name.startswith("auditor")]
        elif isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("auditor") and not node.level:
            names += [a.asname or a.name for a in node.names]
    return tuple(names)


# Attributes set from outside the module whose class declares them: (module, attribute).
# The list may only shrink (a test below fails when an entry no longer occurs).
SET_FROM_OUTSIDE = {
    ("auditor.reporters.junit", "text"),  # an ElementTree element's text, not one of ours
}


def _set_from_outside(trees: dict[str, ast.Module]) -> set[tuple[str, str, int]]:
    declared = {name: _declared(tree) for name, tree in trees.items()}
    anywhere: dict[str, set[str]] = {}
    for name, attrs in declared.items():
        for attr in attrs:
            anywhere.setdefault(attr, set()).add(name)
    found = set()
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")) \
                    and node.attr not in declared[name] and anywhere.get(node.attr, set()) - {name}:
                found.add((name, node.attr, node.lineno))
    return found


def test_no_module_sets_attributes_on_another_modules_objects(trees):
    """An object is changed by its own class's methods, or made anew (dataclasses.replace):
    a module does not assign attributes on objects whose class another module declares."""
    found = _set_from_outside(trees)
    assert sorted(f"{m}:{line} sets .{attr}" for m, attr, line in found if (m, attr) not in SET_FROM_OUTSIDE) == []
    assert SET_FROM_OUTSIDE - {(m, attr) for m, attr, _ in found} == set(), "no longer set from outside: drop these"


def test_the_walks_see_a_private_reach_and_an_attribute_set_from_outside():
    made = {"auditor.a": ast.parse("class A:\n    def __init__(self):\n        self.count = 0\n        self._cache = {}\n"),
            "auditor.b": ast.parse("def bump(a):\n    a.count += 1\n    return a._cache\n")}
    assert _set_from_outside(made) == {("auditor.b", "count", 2)}
    assert "_cache" in _declared(made["auditor.a"]) and "_cache" not in _declared(made["auditor.b"])


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


def test_every_path_the_architecture_doc_names_exists():
    """docs/architecture.md tells a newcomer which files to touch: each path it names in
    backticks is there (placeholders such as `<id>` aside)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = {m for m in re.findall(r"`([^`\s]+)`", text)
             if m.startswith(("auditor/", "rules/", "tests/", "bench/", "fixtures/", "deploy/", "docs/", "scripts/"))}
    assert len(named) > 30
    assert sorted(p for p in named if "<" not in p and not any(ROOT.glob(p.rstrip("/")))) == []


def test_at_most_eight_modules_sit_at_the_top():
    """The top of auditor/ holds the entry points; everything else lives in its layer's folder."""
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
