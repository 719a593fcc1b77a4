"""Validate objects against the CustomResourceDefinitions kept in tests/data/crds, the way
an API server would take them: the version's openAPIV3Schema, with unknown fields refused
(a real server prunes them silently, which for a report is a lost field all the same)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parent / "data" / "crds"


def _strict(schema: dict) -> dict:
    """The schema with additionalProperties: false wherever it lists properties and says
    nothing about others (metadata, which lists none, stays open)."""
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "format"}
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    elif isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = _strict(out["items"])
    return out


def crd_schemas() -> dict[tuple[str, str], tuple[dict, str]]:
    """(apiVersion, kind) -> (strict schema, scope) for every CRD version kept in tests."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = (schema, spec["scope"])
    return out


def check(obj: dict) -> None:
    """Raise AssertionError naming what a server would refuse in `obj`."""
    schemas = crd_schemas()
    key = (obj.get("apiVersion"), obj.get("kind"))
    assert key in schemas, f"no CRD kept in tests for {key}"
    schema, scope = schemas[key]
    namespaced = bool((obj.get("metadata") or {}).get("namespace"))
    assert namespaced == (scope == "Namespaced"), f"{key} is {scope}, metadata says namespace={namespaced}"
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
