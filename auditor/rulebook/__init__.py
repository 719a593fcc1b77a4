"""Rule files: loaded, validated against the rule schema, and compiled once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from auditor.core.errors import UsageError
from auditor.core.kinds import WORKLOAD_GKS
from auditor.rulebook.catalog import digest, validated
from auditor.rulebook.cel import CelError, get_backend
from auditor.schemas import check_schema, load_schema, node_line
from auditor.core.versions import VersionRange
from auditor.core.yamlread import load_yaml

SEVERITIES = ("error", "warning", "info")


def rule_schema() -> dict:
    return load_schema("rule.schema.json")


def builtin_rules_dir() -> Path:
    """`auditor/builtin_rules` in an installed package (mapped from the top-level `rules/`),
    the checkout's `rules/` in an editable install."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "builtin_rules", package.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise UsageError(f"the built-in rules are missing (looked in {package / 'builtin_rules'})")


@dataclass
class Rule:
    id: str
    title: str
    severity: str
    applies_to: list[str]
    when: str
    message: str
    rationale: str
    remediation: str
    references: list[str]
    istio: VersionRange
    path: str
    category: str
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    confidence: str = "high"
    severity_expression: str | None = None
    fields: str | None = None  # CEL: JSON Pointers of the fields a finding is about
    migration: str = "change"  # what `plan` makes of a finding a move introduces (see the rule schema)
    programs: dict = field(default_factory=dict, repr=False)
    backend: object = field(default=None, repr=False, compare=False)  # the CEL runtime `programs` are for

    @property
    def kinds(self) -> list[str]:
        """applies_to with `workload` expanded to the kinds that carry pods."""
        out: list[str] = []
        for k in self.applies_to:
            out.extend(WORKLOAD_GKS if k == "workload" else [k])
        return out

    @property
    def help_uri(self) -> str:
        return self.references[0]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "category": self.category,
            "applies_to": self.applies_to,
            "istio": str(self.istio),
            "tags": self.tags,
            "aliases": self.aliases,
            "confidence": self.confidence,
            "migration": self.migration,
            "rationale": self.rationale.strip(),
            "remediation": self.remediation.strip(),
            "references": self.references,
        }


def _value_line(node, key: str) -> int:
    """Line where a key's value starts (for block scalars, the first line of the text)."""
    for k, v in node.value:
        if k.value == key:
            if isinstance(v, yaml.ScalarNode) and v.style in ("|", ">"):
                return v.start_mark.line + 2
            return v.start_mark.line + 1
    return node.start_mark.line + 1


def load_rule_file(path: Path, category: str | None = None, backend=None,
                   validated: frozenset[str] = frozenset()) -> Rule:
    """Parse, validate and compile one rule file; every problem raises UsageError with file:line.
    A file whose text has one of the `validated` digests (the built-in catalog's,
    rulebook.catalog) is read without the line-tracking parse and the schema pass."""
    name = str(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read rule file: {err}", name) from None
    if validated and digest(text) in validated:
        rule = _load_checked(text, path, category, backend)
        if rule is not None:
            return rule
    node, data = load_yaml(text, name, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict) or node is None:
        raise UsageError("a rule file must be a YAML mapping", name, 1)
    check_schema(data, node, rule_schema(), name)
    try:
        istio = VersionRange(data.get("istio", "all"))
    except ValueError as err:
        raise UsageError(f"'istio' {err}", name, node_line(node, ["istio"])) from None
    rule = _rule(data, path, category, istio, backend)
    for key in _EXPRESSIONS:
        expression = data.get(key)
        if expression is None:
            continue
        try:
            rule.programs[key] = rule.backend.compile(expression)
        except CelError as err:
            raise UsageError(f"'{key}' is not valid CEL: {err}", name, _value_line(node, key)) from None
    return rule


_EXPRESSIONS = ("when", "message", "severity_expression", "fields")


def _rule(data: dict, path: Path, category: str | None, istio: VersionRange, backend) -> Rule:
    """The rule a validated mapping describes, its expressions not yet compiled."""
    rule = Rule(
        id=data["id"], title=data["title"], severity=data["severity"], applies_to=data["applies_to"],
        when=data["when"], message=data["message"], rationale=data["rationale"], remediation=data["remediation"],
        references=data["references"], istio=istio, path=str(path), category=category or path.parent.name,
        tags=data.get("tags", []), aliases=data.get("aliases", []), confidence=data.get("confidence", "high"),
        severity_expression=data.get("severity_expression"), fields=data.get("fields"),
        migration=data.get("migration", "change"),
    )
    rule.backend = backend or get_backend()
    return rule


def _load_checked(text: str, path: Path, category: str | None, backend) -> Rule | None:
    """A validated rule read the short way; None when anything still fails (the caller
    then reads it the full way, which names the problem and its line)."""
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        rule = _rule(data, path, category, VersionRange(data.get("istio", "all")), backend)
        rule.programs = {key: rule.backend.compile(data[key]) for key in _EXPRESSIONS if data.get(key) is not None}
        return rule
    except Exception:  # noqa: BLE001 - whatever it is, the full way reports it
        return None


def rule_files(directory: Path) -> list[Path]:
    """Rule files under a directory; a `fixtures` folder inside it holds test data, not rules."""
    if directory.is_file():
        return [directory]
    return [p for p in sorted(directory.rglob("*.yaml")) if "fixtures" not in p.relative_to(directory).parts[:-1]]


def load_rules(directories: list[Path] | None = None, backend=None) -> list[Rule]:
    """All rules under the given directories (default: the built-in catalog), sorted by id."""
    directories = directories if directories is not None else [builtin_rules_dir()]
    rules: dict[str, Rule] = {}
    names: dict[str, str] = {}
    builtin = builtin_rules_dir().resolve()
    for directory in directories:
        known = validated(builtin) if Path(directory).resolve() == builtin else frozenset()
        for path in rule_files(Path(directory)):
            rule = load_rule_file(path, backend=backend, validated=known)
            if path.stem != rule.id:
                raise UsageError(f"rule id '{rule.id}' does not match the file name '{path.name}'", str(path), 1)
            for name in [rule.id, *rule.aliases]:
                if name in names:
                    raise UsageError(f"rule id or alias '{name}' is already used by {names[name]}", str(path), 1)
                names[name] = str(path)
            rules[rule.id] = rule
    return [rules[k] for k in sorted(rules)]


def catalog_digests(directory: Path) -> str:
    """The digest list of a catalog (rulebook.catalog), each file validated the full way
    first (UsageError for the first that fails)."""
    lines = []
    for path in rule_files(directory):
        load_rule_file(path)
        lines.append(f"{digest(path.read_text('utf-8'))}  {path.relative_to(directory).as_posix()}")
    return "\n".join(lines) + "\n"


def validate_rule_files(paths: list[Path]) -> tuple[int, list[str]]:
    """Check rule files or directories of them: schema, CEL, file names, and ids or aliases
    that another file (a built-in rule included) already uses. (files checked, problems)."""
    builtin = str(builtin_rules_dir())
    taken = {name: r.path for r in load_rules() for name in (r.id, *r.aliases)}
    problems, count = [], 0
    for root in paths:
        for path in rule_files(root):
            try:
                rule = load_rule_file(path)
            except UsageError as err:
                problems.append(str(err))
                continue
            if path.stem != rule.id:
                problems.append(str(UsageError(f"rule id '{rule.id}' does not match the file name '{path.name}'", str(path), 1)))
            for name in (rule.id, *rule.aliases):
                other = taken.get(name)
                if other is not None and Path(other).resolve() != path.resolve():
                    owner = "a built-in rule" if builtin in other else other
                    problems.append(str(UsageError(f"rule id or alias '{name}' is already used by {owner}", str(path), 1)))
                taken[name] = str(path)
            count += 1
    return count, problems


def rule_names(rules: list[Rule]) -> dict[str, str]:
    """Every id and alias, to the id of the rule it names."""
    return {name: r.id for r in rules for name in (r.id, *r.aliases)}


def find_rule(rules: list[Rule], name: str) -> Rule | None:
    for rule in rules:
        if name == rule.id or name in rule.aliases:
            return rule
    return None
