"""The same cluster read in every shape users feed mesh-audit (a snapshot, a `kubectl get
-o json` List dump, a `kubectl get -o yaml` List dump) gives reports byte for byte equal to
each other and to the reports recorded before the loaders were rewritten for speed
(tests/data/shapes-2k.json: SHA-256 of each report). Regenerate the record only when a
report is meant to change: python tests/test_shapes.py --record"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "tests" / "data" / "shapes-2k.json"
SHAPES = {"snapshot": ["--snapshot", "2k/snapshot.json"], "json-dump": ["-f", "2k/dump.json"],
          "yaml-dump": ["-f", "2k/dump.yaml"]}
FORMATS = ("json", "sarif")


def reports(folder: Path, keep: dict | None = None) -> dict[str, str]:
    """SHA-256 of each shape's report in each format, scanned from `folder` (paths relative);
    the JSON reports themselves go into `keep`."""
    sys.path.insert(0, str(ROOT / "bench"))
    from generate import write

    if not (folder / "2k" / "snapshot.json").exists():
        write(2000, folder / "2k")
    out = {}
    for shape, args in SHAPES.items():
        for fmt in FORMATS:
            result = subprocess.run([sys.executable, "-m", "auditor", "scan", *args, "-o", fmt, "--fail-on", "never", "-q"],
                                    capture_output=True, cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
            assert result.returncode == 0, result.stderr.decode()
            text = result.stdout.replace(str(folder.resolve()).encode(), b"<folder>")  # SARIF's %SRCROOT%
            out[f"{shape}.{fmt}"] = hashlib.sha256(text).hexdigest()
            if keep is not None and fmt == "json":
                keep[shape] = json.loads(result.stdout)
    return out


KEPT: dict = {}


@pytest.fixture(scope="module")
def digests(tmp_path_factory):
    return reports(tmp_path_factory.mktemp("shapes"), KEPT)


def test_every_shape_reports_as_recorded(digests):
    assert digests == json.loads(RECORD.read_text())


def test_the_shapes_agree_with_each_other(digests):
    """A snapshot and the dumps differ in where objects came from (a dump has files and
    lines) and nothing else: every finding is the same."""
    def findings(shape):
        return [(f["rule"], f["severity"], f["object"], f["message"], f["pods"]) for f in KEPT[shape]["findings"]]

    assert findings("snapshot") == findings("json-dump") == findings("yaml-dump")
    assert len(findings("snapshot")) > 20


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        RECORD.write_text(json.dumps(reports(Path(tmp)), indent=2, sort_keys=True) + "\n")
    print(f"recorded {RECORD}")
