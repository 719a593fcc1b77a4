"""The SARIF checks tests share: the OASIS SARIF 2.1.0 schema, kept in tests/data so that a
fresh clone checks every SARIF report against it, a few of GitHub code scanning's own
ingestion rules, and, where it lies beside the checkout (as in CI), the shared validator
with the rest of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
SHARED_VALIDATOR = Path(__file__).resolve().parent.parent.parent / "shared" / "sarif" / "validate_sarif.py"


def check_sarif(path) -> dict:
    """The SARIF document at `path`, after asserting it is valid; every problem in the message."""
    doc = json.loads(Path(path).read_text())
    schema = json.loads(SCHEMA.read_text())
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in jsonschema.Draft4Validator(schema).iter_errors(doc)]
    problems += _github_problems(doc)
    assert problems == [], "\n".join(problems[:20])
    if SHARED_VALIDATOR.exists():
        check = subprocess.run([sys.executable, str(SHARED_VALIDATOR), str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    return doc


def _github_problems(doc: dict) -> list[str]:
    """What code scanning refuses that the schema allows: a result without a location or a
    rule the run declares, or a location whose line is not a positive number."""
    out = []
    for r, run in enumerate(doc.get("runs") or []):
        rules = {rule["id"] for rule in run["tool"]["driver"].get("rules", [])}
        for i, result in enumerate(run.get("results") or []):
            where = f"runs/{r}/results/{i}"
            if result.get("ruleId") not in rules:
                out.append(f"{where}: ruleId {result.get('ruleId')!r} is not among the run's rules")
            if not result.get("locations"):
                out.append(f"{where}: no location")
            for loc in result.get("locations") or []:
                line = loc.get("physicalLocation", {}).get("region", {}).get("startLine", 1)
                if not isinstance(line, int) or line < 1:
                    out.append(f"{where}: startLine {line!r}")
    return out
