"""The shipped rules are exactly the catalog of ../shared/spec/rules.md: ids, severities and
Istio version ranges. Skipped where the spec is not checked out next to the project."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

CATALOG = ROOT.parent / "shared" / "spec" / "rules.md"
SEVERITY_WORDS = re.compile(r"\b(error|warning|info)\b")

pytestmark = pytest.mark.skipif(not CATALOG.exists(), reason="rules.md is not beside the project")


# Rules added after catalog v1, for audits of several clusters (AMB-MULTICLUSTER-LIMITS,
# Section D's multi-cluster and multi-network rows, istioctl's IST0170), as rows would say.
ADDED = {
    "multicluster-ambient": ("error (info, warning with --strict-maturity, while Alpha)", "cluster", "all"),
    "multinetwork-ambient-unsupported": ("error", "cluster", "all (multi-network ambient is absent before 1.27)"),
    "multicluster-ambient-single-network": ("warning", "cluster", ">=1.27"),
    "primary-remote-ambient": ("warning", "cluster", ">=1.27"),
    "waypoint-multicluster-mismatch": ("warning", "Service", ">=1.27"),
    "headless-multicluster-ambient": ("warning", "Service", ">=1.27"),
    "service-multicluster-conflict": ("warning", "Service", "all"),
    "mesh-identity-mismatch": ("error (warning for the mesh ID alone)", "cluster", "all"),
    # Issue 25 (mistakes Istio's own ambient guides document; AMB-DNS-CAPTURE-OFF for the default).
    "serviceentry-waypoint-needs-dns-capture": ("warning", "ServiceEntry", "<1.25"),
    "telemetry-at-waypoint-before-1-24": ("warning", "Telemetry", "<1.24"),  # AMB-TELEMETRY-SELECTOR's 1.24 note
    "waypoint-deny-by-waypoint-identity": ("error", "AuthorizationPolicy", "all"),  # Istio's migrate-policies guide
    "ztunnel-policy-refuses-waypoint": ("error", "AuthorizationPolicy", "all"),  # Istio's ambient getting-started guide
}


def catalog_rows() -> dict[str, dict]:
    rows = {}
    for line in CATALOG.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] != "id" and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cells[0]):
            rows[cells[0]] = {"severity": cells[1], "subject": cells[2], "versions": cells[4]}
    for rule, (severity, subject, versions) in ADDED.items():
        rows[rule] = {"severity": severity, "subject": subject, "versions": versions}
    return rows


def expected_range(cell: str) -> str:
    m = re.match(r"^\s*((?:>=|<=|<|>)\d+\.\d+(?:\.\d+)?)", cell)
    return m.group(1) if m else "all"


def test_every_catalog_rule_ships_and_nothing_else(rules):
    assert {r.id for r in rules} == set(catalog_rows())


def test_severities_follow_the_catalog(rules):
    rows = catalog_rows()
    for rule in rules:
        words = SEVERITY_WORDS.findall(rows[rule.id]["severity"])
        assert rule.severity == words[0], rule.id
        if len(set(words)) > 1:
            assert rule.severity_expression, f"{rule.id}: the catalog gives several severities"


# Where mesh-audit knowingly departs from the catalog, and why.
RANGE_CHANGES = {
    # Ingress gateways skip waypoints on 1.22 and 1.23 too (there was no opt-in at all yet):
    # the rule applies to every version, with a message that says so before 1.24.
    "waypoint-ingress-bypass": "all",
}


def test_version_ranges_follow_the_catalog(rules):
    rows = catalog_rows()
    for rule in rules:
        assert str(rule.istio) == RANGE_CHANGES.get(rule.id, expected_range(rows[rule.id]["versions"])), rule.id


def test_observed_rules_only_judge_observed_objects(rules):
    """Rows whose subject says '(observed)' must check for observed objects or a live cluster."""
    rows = catalog_rows()
    for rule in rules:
        if "(observed)" in rows[rule.id]["subject"]:
            assert "facts.observed" in rule.when or "mesh.live" in rule.when, rule.id
