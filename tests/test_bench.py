"""The benchmark's generator: deterministic, and a cluster mesh-audit reads like any other."""

from __future__ import annotations

import sys

from click.testing import CliRunner

from auditor.cli import cli
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from generate import generate, write  # noqa: E402


def test_same_seed_same_cluster():
    assert generate(300, seed=3) == generate(300, seed=3)
    assert generate(300, seed=3) != generate(300, seed=4)


def test_generated_cluster_scans_the_same_from_snapshot_dump_and_yaml(tmp_path):
    stats = write(200, tmp_path)
    assert stats["pods"] == 200
    def rules_hit(*args):
        result = CliRunner().invoke(cli, ["scan", *args, "-o", "json", "--fail-on", "never", "-q"], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        import json

        return sorted((f["rule"], f["object"]["kind"], f["object"]["name"], f["pods"]) for f in json.loads(result.stdout)["findings"])

    from_snapshot = rules_hit("--snapshot", str(tmp_path / "snapshot.json"))
    assert from_snapshot and from_snapshot == rules_hit(str(tmp_path / "dump.json")) == rules_hit(str(tmp_path / "yaml"))
    assert any(rule == "authz-l7-at-ztunnel" for rule, *_ in from_snapshot)
