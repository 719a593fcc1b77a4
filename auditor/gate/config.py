"""The project configuration file, `.mesh-audit.yaml`: rule settings and exemptions.

    extends: recommended          # or strict
    fail_on: error
    rules:
      mode-inject-annotation: off
      authz-dry-run-at-ztunnel: warning
    exemptions:
      - rule: waypoint-missing
        object: Service/shop/legacy-*
        reason: waypoint lands with ticket NET-123
        expires: 2027-03-31

Errors name the file, the line and the key. Rule ids may be aliases; unknown ids are
errors, so a typo cannot silently disable nothing.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from auditor.core.errors import UsageError
from auditor.schemas import check_schema, load_schema, node_line
from auditor.core.yamlread import load_yaml
from auditor.core.words import did_you_mean

DEFAULT_NAME = ".mesh-audit.yaml"


@dataclass(frozen=True)
class Exemption:
    rule: str  # a rule id, or "*"
    pattern: str
    reason: str
    expires: date | None = None
    line: int | None = None
    source: str = "config"

    def expired(self, today: date) -> bool:
        return self.expires is not None and today >= self.expires

    def matches(self, rule: str, object_path: str, cluster: str | None = None) -> bool:
        """The rule, and the object's `Kind/ns/name`; a pattern ending in `@CLUSTER-GLOB`
        matches only objects of those clusters (in an audit of several)."""
        if self.rule != "*" and self.rule != rule:
            return False
        pattern, at, clusters = self.pattern.rpartition("@")
        if not at:
            return _glob(object_path, self.pattern)
        return cluster is not None and fnmatch.fnmatchcase(cluster, clusters) and _glob(object_path, pattern)

    def describe(self) -> str:
        until = f" (until {self.expires.isoformat()})" if self.expires else ""
        return f"{self.rule} on {self.pattern}{until}: {self.reason}"

    def to_dict(self) -> dict:
        return {"rule": self.rule, "object": self.pattern, "reason": self.reason,
                "expires": self.expires.isoformat() if self.expires else None, "source": self.source, "line": self.line}


def _glob(object_path: str, pattern: str) -> bool:
    """Globs per part; kinds compare case-insensitively, as kubectl accepts `deployment`."""
    kind, _, rest = object_path.partition("/")
    pkind, _, prest = pattern.partition("/")
    return fnmatch.fnmatchcase(kind.lower(), pkind.lower()) and fnmatch.fnmatchcase(rest, prest)


@dataclass
class Config:
    path: str | None = None
    extends: str = "recommended"
    fail_on: str | None = None
    disabled: set = field(default_factory=set)
    enabled: set = field(default_factory=set)
    severities: dict = field(default_factory=dict)
    exemptions: list = field(default_factory=list)
    exclude: list = field(default_factory=list)  # gitignore-style, relative to the config file's folder
    gitignore: bool = True
    require_rendering: bool = False
    helm_charts: dict = field(default_factory=dict)  # chart folder (absolute) -> {release, namespace, values}

    @property
    def folder(self) -> Path:
        """What paths in the file are relative to."""
        return Path(self.path).parent if self.path else Path(".")

    @property
    def strict(self) -> bool:
        return self.extends == "strict"

    def effective_fail_on(self, cli_value: str | None) -> str:
        return cli_value or self.fail_on or ("warning" if self.strict else "error")

    def apply(self, rules: list) -> list:
        """The rules to run: disabled ones dropped, severities overridden (a fixed override
        replaces any per-finding severity expression)."""
        out = []
        for rule in rules:
            if rule.id in self.disabled:
                continue
            severity = self.severities.get(rule.id)
            if severity is not None:
                programs = {k: v for k, v in rule.programs.items() if k != "severity_expression"}
                rule = replace(rule, severity=severity, severity_expression=None, programs=programs)
            out.append(rule)
        return out


def find_config(explicit: str | None, cwd: Path | None = None) -> str | None:
    """The --config file, else .mesh-audit.yaml in the working directory (named as the user
    would: relative), else None."""
    if explicit:
        return explicit
    if cwd is None:
        return DEFAULT_NAME if Path(DEFAULT_NAME).is_file() else None
    candidate = cwd / DEFAULT_NAME
    return str(candidate) if candidate.is_file() else None


def load_config(path: str | None, rules: list) -> Config:
    """Parse and check a config file against the schema and the known rule ids."""
    if path is None:
        return Config()
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read the config file: {getattr(err, 'strerror', None) or err}", path) from None
    node, data = load_yaml(text, path)  # dates stay strings, as the schema expects
    if data is None:
        return Config(path=path)
    if not isinstance(data, dict):
        raise UsageError("the config file must be a YAML mapping", path, 1)
    check_schema(data, node, load_schema("config.schema.json"), path)

    names = {}
    for rule in rules:
        for name in (rule.id, *rule.aliases):
            names[name] = rule.id

    def rule_id(name: str, key_path: list) -> str:
        if name == "*" and key_path[0] == "exemptions":
            return "*"
        if name not in names:
            raise UsageError(f"'{'.'.join(map(str, key_path))}': no rule named '{name}'{did_you_mean(name, names)} "
                             "(see 'mesh-audit rules list')", path, node_line(node, key_path))
        return names[name]

    config = Config(path=path, extends=data.get("extends", "recommended"), fail_on=data.get("fail_on"),
                    exclude=list(data.get("exclude") or []), gitignore=data.get("gitignore", True),
                    require_rendering=data.get("require_rendering", False))
    for chart, options in ((data.get("helm") or {}).get("charts") or {}).items():
        config.helm_charts[str((config.folder / chart).resolve())] = {
            **options, "values": [str((config.folder / v).resolve()) for v in options.get("values", [])]}
    for name, value in (data.get("rules") or {}).items():
        rid = rule_id(name, ["rules", name])
        if isinstance(value, dict):
            enabled, severity = value.get("enabled", True), value.get("severity")
        elif value in (False, "off"):
            enabled, severity = False, None
        elif value in (True, "on"):
            enabled, severity = True, None
        else:
            enabled, severity = True, value
        (config.enabled if enabled else config.disabled).add(rid)
        if severity:
            config.severities[rid] = severity
    for i, item in enumerate(data.get("exemptions") or []):
        expires = None
        if "expires" in item:
            try:
                expires = date.fromisoformat(item["expires"])
            except ValueError:
                raise UsageError(f"'exemptions.{i}.expires' {item['expires']!r} is not a date", path,
                                 node_line(node, ["exemptions", i, "expires"])) from None
        config.exemptions.append(Exemption(
            rule=rule_id(item["rule"], ["exemptions", i, "rule"]), pattern=item["object"], reason=item["reason"],
            expires=expires, line=node_line(node, ["exemptions", i]),
        ))
    return config
