"""JSON Schemas of mesh-audit's own files (rules, config, reports), and validation of YAML
against them with errors that name the key and its line."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import yaml

from auditor.core.errors import UsageError


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    return json.loads(resources.files("auditor.schemas").joinpath(name).read_text("utf-8"))


def node_line(node, path) -> int:
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


def explain_error(error) -> str:
    """A jsonschema ValidationError in a sentence."""
    where = ".".join(str(p) for p in error.absolute_path)
    if "errorMessage" in error.schema:
        return f"'{where}' {error.schema['errorMessage']}"
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
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join(("an " if w[0] in "aeiou" else "a ") + w for w in wanted)
        return f"'{where}' must be {words}, not {_json_type(error.instance)}"
    return f"'{where}': {error.message}" if where else error.message


def _json_type(value) -> str:
    """A Python value named as JSON names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, word in ((int, "an integer"), (float, "a number"), (str, "a string"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return word
    return type(value).__name__


def check_schema(data, node, schema: dict, name: str) -> None:
    """Raise UsageError for the first schema violation, at the line of the offending key."""
    import jsonschema  # about 70 ms to import: only for files that need checking

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (node_line(node, e.absolute_path), str(e.message)))
    if errors:
        # anyOf/oneOf failures report each branch; the schema's own errorMessage says it better.
        first = errors[0]
        while first.validator in ("anyOf", "oneOf") and "errorMessage" not in first.schema and first.context:
            first = first.context[0]
        path = list(first.absolute_path)
        if first.validator == "additionalProperties":  # point at the unknown key itself
            path += sorted(set(first.instance) - set(first.schema.get("properties", {})))[:1]
        raise UsageError(explain_error(first), name, node_line(node, path))
