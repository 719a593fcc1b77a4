"""The rule test harness: run fixtures against rules and say exactly what differs.

Fixtures live in `<fixtures>/<rule-id>/pass.<scenario>.yaml` and `fail.<scenario>.yaml`.
Header comments drive a fixture:

    # expect: Kind namespace/name            the objects a fail fixture must flag (all of them)
    # expect: Kind namespace/name [warning]  ... and the severity of that finding
    # istio-version: 1.24.2                  evaluate for this Istio version
    # collected: daemonsets.apps, ...        as if read from a cluster that collected these
    # sidecar-scope-threshold: 2             lower that threshold
    # strict-maturity: true                  as --strict-maturity (Alpha features are warnings)
    # cluster: east                          the documents below belong to cluster east: a
                                             fixture with these lines is a mesh of clusters,
                                             and its expect lines name objects `... @east`

A pass fixture must produce no finding of its rule. The built-in catalog is tested with
this harness, and `mesh-audit rules test` runs it on a user's rules.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from auditor import api
from auditor.core.versions import parse_version

FIXTURE_NAME = re.compile(r"^(pass|fail)\.[a-z0-9-]+\.yaml$")
_EXPECT = re.compile(r"^(.*?)\s*\[(error|warning|info)\]$")


def header(path: Path, key: str) -> list[str]:
    prefix = f"# {key}:"
    return [line[len(prefix):].strip() for line in path.read_text("utf-8").splitlines() if line.startswith(prefix)]


def expectations(path: Path) -> tuple[set[str], dict[str, str]]:
    """The objects a fixture expects, and the severities it pins."""
    expected, severities = set(), {}
    for line in header(path, "expect"):
        m = _EXPECT.match(line)
        ref = m.group(1) if m else line
        expected.add(ref)
        if m:
            severities[ref] = m.group(2)
    return expected, severities


def fixture_settings(path: Path, rules: list) -> api.Settings:
    """The settings a fixture's header asks for: version, collected types, threshold."""
    collected = header(path, "collected")
    threshold = header(path, "sidecar-scope-threshold")
    versions = header(path, "istio-version")
    return api.Settings(
        strict_maturity=header(path, "strict-maturity") == ["true"],
        rules=rules,
        istio_version=parse_version(versions[0]) if versions else None,
        collected=frozenset(k.strip() for k in collected[0].split(",")) if collected else None,
        sidecar_scope_threshold=int(threshold[0]) if threshold else 50,
    )


def cluster_parts(path: Path, folder: Path) -> dict[str, list[str]] | None:
    """For a fixture with `# cluster: NAME` lines: each cluster's documents written to a
    file of its own in `folder` (name -> [file]); None for a single-cluster fixture."""
    parts: dict[str, list[str]] = {}
    current = None
    for line in path.read_text("utf-8").splitlines(keepends=True):
        if line.startswith("# cluster:"):
            current = line[len("# cluster:"):].strip()
            parts.setdefault(current, [])
        elif current is not None:
            parts[current].append(line)
    if not parts:
        return None
    out = {}
    for name, lines in parts.items():
        file = folder / f"{len(out)}.yaml"
        file.write_text("".join(lines), "utf-8")
        out[name] = [str(file)]
    return out


class FixtureError(api.UsageError):
    """A fixture the harness cannot read as written."""


def load_fixture(path: Path):
    """A fixture's objects: a Snapshot, or Clusters for one with `# cluster:` sections.
    FixtureError for such a fixture with fewer than two."""
    with tempfile.TemporaryDirectory(prefix="mesh-audit-fixture-") as folder:
        parts = cluster_parts(path, Path(folder))
        if parts is not None and len(parts) < 2:
            raise FixtureError("a fixture of several clusters needs at least two '# cluster:' sections")
        return api.load(parts if parts else [str(path)])


@dataclass
class Outcome:
    path: Path
    rule: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_fixture(path: Path, rules: list) -> Outcome:
    """Audit one fixture file with `rules` and compare what its rule finds with its header."""
    rule_id = path.parent.name
    outcome = Outcome(path, rule_id)
    try:
        snapshot = load_fixture(path)
    except FixtureError as err:
        outcome.problems.append(str(err))
        return outcome
    outcome.problems += [f"input: {e}" for e in snapshot.errors]
    versions = header(path, "istio-version")
    if versions and parse_version(versions[0]) is None:
        outcome.problems.append(f"'# istio-version: {versions[0]}' is not a version")
    report = api.audit(snapshot, fixture_settings(path, rules))
    outcome.problems += [f"rule error on {e['object']}: {e['message']}" for e in report.errors if e.get("rule") == rule_id]
    findings = [f for f in report.findings if f.rule == rule_id]
    got = {str(f.object) for f in findings}
    expected, severities = expectations(path)
    if path.name.startswith("fail."):
        if not expected:
            outcome.problems.append("a fail fixture must name the objects it flags in '# expect:' lines")
        outcome.problems += [f"does not fire on {ref}" for ref in sorted(expected - got)]
        outcome.problems += [f"fires on {ref}, which the fixture does not expect" for ref in sorted(got - expected)]
        for f in findings:
            want = severities.get(str(f.object))
            if want and f.severity != want:
                outcome.problems.append(f"{f.object}: severity {f.severity}, expected {want}")
    else:
        if expected:
            outcome.problems.append("a pass fixture expects nothing; remove its '# expect:' lines")
        outcome.problems += [f"fires on {f.object}: {f.message}" for f in findings]
    return outcome


def layout_problems(fixtures: Path, rules: list) -> list[str]:
    """Every rule has a pass and a fail fixture; every folder and file is named for one."""
    problems = []
    ids = {r.id for r in rules}
    for rule in rules:
        names = [p.name for p in (fixtures / rule.id).glob("*.yaml")]
        if not any(n.startswith("fail.") for n in names):
            problems.append(f"{rule.id}: no fail fixture in {fixtures / rule.id}")
        if not any(n.startswith("pass.") for n in names):
            problems.append(f"{rule.id}: no pass fixture in {fixtures / rule.id}")
    if fixtures.is_dir():
        for folder in sorted(p for p in fixtures.iterdir() if p.is_dir()):
            if folder.name not in ids:
                problems.append(f"{folder}: matches no rule")
                continue
            for path in sorted(folder.iterdir()):
                if not FIXTURE_NAME.match(path.name):
                    problems.append(f"{path}: name it pass.<scenario>.yaml or fail.<scenario>.yaml")
    return problems


def fixture_files(fixtures: Path, rule_ids: set[str] | None = None) -> list[Path]:
    return [p for p in sorted(fixtures.glob("*/*.yaml")) if rule_ids is None or p.parent.name in rule_ids]


@dataclass
class Summary:
    rules: int
    layout_problems: list[str]
    outcomes: list[Outcome]

    @property
    def failed(self) -> int:
        return len(self.layout_problems) + sum(not o.ok for o in self.outcomes)


def check_rule_directory(directory: Path, fixtures: Path, rules: list) -> Summary:
    """Run the fixtures of the rules that live under `directory` (among `rules`, which
    may hold the built-in ones their fixtures also exercise)."""
    own = {r.id for r in rules if Path(r.path).resolve().is_relative_to(directory.resolve())}
    mine = [r for r in rules if r.id in own]
    outcomes = [run_fixture(path, rules) for path in fixture_files(fixtures, own)]
    return Summary(len(mine), layout_problems(fixtures, mine), outcomes)
