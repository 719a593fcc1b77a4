"""JUnit XML for GitLab, Jenkins and other CI test views (valid against the common
junit-10.xsd schema that Jenkins' xUnit plugin reads).

One test suite per rule, one test case per object a finding names, called after the rule
and the object (never a line, so a test's history survives edits that move it). A finding
at or above the gate (`--fail-on`) fails its case; one below it passes, with the finding in
`system-out`; a suppressed or baselined one is skipped with the reason. A rule with no
findings is one passing case, so the run shows every rule that was checked.
"""

from __future__ import annotations

import re
from itertools import groupby
from xml.etree import ElementTree as ET

from auditor.model.report import SEVERITY_RANK, Report, describe_gap
from auditor.reporters.view import PLAIN, View


def _fails(report: Report, severity: str) -> bool:
    return report.fail_on != "never" and SEVERITY_RANK[severity] <= SEVERITY_RANK[report.fail_on]


def _case(suite: ET.Element, report: Report, rule, f) -> str:
    """One finding's test case; returns "failure", "skipped" or "passed"."""
    case = ET.SubElement(suite, "testcase", classname=f"mesh-audit.{rule.id}", name=f"{rule.id} {f.object}")
    location = f" ({f.location[0]}:{f.location[1]})" if f.location else ""
    detail = f"{f.severity}: {rule.title}\n{f.object}{location}\n{f.message}\nhelp: {rule.help_uri}"
    if not f.counts:
        why = [s["justification"] for s in f.suppressions] or ["in the baseline"]
        ET.SubElement(case, "skipped", message="; ".join(why))
        return "skipped"
    if _fails(report, f.severity):
        ET.SubElement(case, "failure", type=f.severity, message=f.message).text = detail
        return "failure"
    ET.SubElement(case, "system-out").text = f"below the gate (--fail-on {report.fail_on}): {detail}"
    return "passed"


def render(report: Report, view: View = PLAIN) -> str:
    suites = ET.Element("testsuites", name="mesh-audit")
    by_rule = {rule: list(group) for rule, group in groupby(sorted(report.findings, key=lambda f: (f.rule, f.sort_key())),
                                                            key=lambda f: f.rule)}
    total = failures = 0
    for rule in sorted(report.rules, key=lambda r: r.id):
        findings = by_rule.get(rule.id, [])
        suite = ET.SubElement(suites, "testsuite", name=rule.id)
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="severity", value=rule.severity)
        outcomes = [_case(suite, report, rule, f) for f in findings]
        if not findings:
            ET.SubElement(suite, "testcase", classname=f"mesh-audit.{rule.id}", name=f"{rule.id} no findings")
            outcomes = ["passed"]
        suite.set("tests", str(len(outcomes)))
        suite.set("failures", str(outcomes.count("failure")))
        suite.set("errors", "0")
        suite.set("skipped", str(outcomes.count("skipped")))
        total, failures = total + len(outcomes), failures + outcomes.count("failure")
    errors = _run_problems(suites, report)
    suites.set("tests", str(total + errors))
    suites.set("failures", str(failures))
    suites.set("errors", str(errors))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _xml_chars(ET.tostring(suites, encoding="unicode")) + "\n"


# XML 1.0 allows no C0 control but tab and line breaks (an ESC from the input would make the
# file ill-formed), and ElementTree writes them as they are.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_chars(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _run_problems(suites: ET.Element, report: Report) -> int:
    """Errors of the run itself (input, rules, what was not collected) as one suite of errors."""
    problems = [e["message"] for e in report.errors] + [f"not collected: {describe_gap(g)}" for g in report.not_collected]
    if not problems:
        return 0
    suite = ET.SubElement(suites, "testsuite", name="mesh-audit.run", tests=str(len(problems)), failures="0",
                          errors=str(len(problems)))
    for problem in problems:
        case = ET.SubElement(suite, "testcase", classname="mesh-audit.run", name=problem[:120])
        ET.SubElement(case, "error", message=problem)
    return len(problems)
