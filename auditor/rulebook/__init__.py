"""Rule files: loaded, validated against the rule schema, and compiled once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from auditor.errors import UsageError
from auditor.facts.workloads import WORKLOAD_GKS
from auditor.rulebook.cel import CelError, get_backend
from auditor.versions import VersionRange

SEVERITIES = ("error", "warning", "info")
_SCHEMA = None


def rule_schema() -> dict:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(resources.files("auditor.schemas").joinpath("rule.schema.json").read_text("utf-8"))
    return _SCHEMA


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
    programs: dict = field(default_factory=dict, repr=False)

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
            "rationale": self.rationale.strip(),
            "remediation": self.remediation.strip(),
            "references": self.references,
        }


def _node_line(node, path) -> int:
    """Line of the YAML node at a JSON path (the deepest one that exists)."""
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _value_line(node, key: str) -> int:
    """Line where a key's value starts (for block scalars, the first line of the text)."""
    for k, v in node.value:
        if k.value == key:
            if isinstance(v, yaml.ScalarNode) and v.style in ("|", ">"):
                return v.start_mark.line + 2
            return v.start_mark.line + 1
    return node.start_mark.line + 1


def _explain(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown key {', '.join(repr(e) for e in extra)} (allowed: {', '.join(sorted(error.schema['properties']))})"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "enum":
        return f"'{where}' must be one of {', '.join(map(str, error.validator_value))}, not {error.instance!r}"
    if error.validator == "pattern":
        return f"'{where}' value {error.instance!r} does not match the expected form {error.validator_value}"
    if error.validator == "type":
        return f"'{where}' must be a {error.validator_value}, not {type(error.instance).__name__}"
    return f"'{where}': {error.message}" if where else error.message


def load_rule_file(path: Path, category: str | None = None, backend=None) -> Rule:
    """Parse, validate and compile one rule file; every problem raises UsageError with file:line."""
    name = str(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read rule file: {err}", name) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise UsageError(f"invalid YAML: {err.problem or err.context}", name, mark.line + 1 if mark else None) from None
    if not isinstance(data, dict) or node is None:
        raise UsageError("a rule file must be a YAML mapping", name, 1)
    validator = jsonschema.Draft202012Validator(rule_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (_node_line(node, e.absolute_path), str(e.message)))
    if errors:
        first = errors[0]
        path = list(first.absolute_path)
        if first.validator == "additionalProperties":  # point at the unknown key itself
            path += sorted(set(first.instance) - set(first.schema.get("properties", {})))[:1]
        raise UsageError(_explain(first), name, _node_line(node, path))
    try:
        istio = VersionRange(data.get("istio", "all"))
    except ValueError as err:
        raise UsageError(f"'istio' {err}", name, _node_line(node, ["istio"])) from None

    rule = Rule(
        id=data["id"], title=data["title"], severity=data["severity"], applies_to=data["applies_to"],
        when=data["when"], message=data["message"], rationale=data["rationale"], remediation=data["remediation"],
        references=data["references"], istio=istio, path=name, category=category or path.parent.name,
        tags=data.get("tags", []), aliases=data.get("aliases", []), confidence=data.get("confidence", "high"),
        severity_expression=data.get("severity_expression"),
    )
    backend = backend or get_backend()
    for key in ("when", "message", "severity_expression"):
        expression = data.get(key)
        if expression is None:
            continue
        try:
            rule.programs[key] = backend.compile(expression)
        except CelError as err:
            raise UsageError(f"'{key}' is not valid CEL: {err}", name, _value_line(node, key)) from None
    return rule


def load_rules(directories: list[Path] | None = None, backend=None) -> list[Rule]:
    """All rules under the given directories (default: the built-in catalog), sorted by id."""
    directories = directories if directories is not None else [builtin_rules_dir()]
    rules: dict[str, Rule] = {}
    names: dict[str, str] = {}
    for directory in directories:
        for path in sorted(Path(directory).rglob("*.yaml")):
            rule = load_rule_file(path, backend=backend)
            if path.stem != rule.id:
                raise UsageError(f"rule id '{rule.id}' does not match the file name '{path.name}'", str(path), 1)
            for name in [rule.id, *rule.aliases]:
                if name in names:
                    raise UsageError(f"rule id or alias '{name}' is already used by {names[name]}", str(path), 1)
                names[name] = str(path)
            rules[rule.id] = rule
    return [rules[k] for k in sorted(rules)]


def find_rule(rules: list[Rule], name: str) -> Rule | None:
    for rule in rules:
        if name == rule.id or name in rule.aliases:
            return rule
    return None
