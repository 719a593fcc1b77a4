"""JUnit XML for GitLab, Jenkins and other CI test views.

One test suite per rule. Every finding is a test case named after its object that
fails (type = severity); suppressed findings are skipped with their reason; a rule
with no findings is one passing case, so the run shows every rule that was checked.
"""

from __future__ import annotations

from itertools import groupby
from xml.etree import ElementTree as ET

from auditor.report import Report, describe_gap


def render(report: Report) -> str:
    suites = ET.Element("testsuites", name="mesh-audit")
    by_rule = {rule: list(group) for rule, group in groupby(sorted(report.findings, key=lambda f: (f.rule, f.sort_key())), key=lambda f: f.rule)}
    total = failures = skipped = 0
    for rule in sorted(report.rules, key=lambda r: r.id):
        findings = by_rule.get(rule.id, [])
        suite = ET.SubElement(suites, "testsuite", name=rule.id)
        cases = failed = skips = 0
        if not findings:
            ET.SubElement(suite, "testcase", classname=f"mesh-audit.{rule.id}", name="no findings")
            cases = 1
        for f in findings:
            location = f" ({f.location[0]}:{f.location[1]})" if f.location else ""
            case = ET.SubElement(suite, "testcase", classname=f"mesh-audit.{rule.id}", name=f"{f.object}{location}")
            cases += 1
            if f.suppressed:
                ET.SubElement(case, "skipped", message="; ".join(s["justification"] for s in f.suppressions))
                skips += 1
            else:
                failure = ET.SubElement(case, "failure", type=f.severity, message=f.message)
                failure.text = f"{f.severity}: {rule.title}\n{f.object}{location}\n{f.message}\nhelp: {rule.help_uri}"
                failed += 1
        suite.set("tests", str(cases))
        suite.set("failures", str(failed))
        suite.set("skipped", str(skips))
        suite.set("errors", "0")
        total, failures, skipped = total + cases, failures + failed, skipped + skips
    if report.errors or report.not_collected:
        suite = ET.SubElement(suites, "testsuite", name="mesh-audit.run")
        for problem in [e["message"] for e in report.errors] + [f"not collected: {describe_gap(g)}" for g in report.not_collected]:
            case = ET.SubElement(suite, "testcase", classname="mesh-audit.run", name=problem[:120])
            ET.SubElement(case, "error", message=problem)
        n = len(report.errors) + len(report.not_collected)
        suite.set("tests", str(n))
        suite.set("errors", str(n))
        suite.set("failures", "0")
        total += n
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("skipped", str(skipped))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
