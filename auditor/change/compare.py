"""What a change adds to and resolves in the audit of its base (`--changes-only`).

Findings are matched by identity (rule and object, never the message), as baselines
are: a finding of the combined state that the base lacks is added, one of the base that
the combined state lacks is resolved. The report keeps the added ones only, so its exit
code counts what the change brings and never what was already wrong in the cluster.

A finding on an object the change did not write is caused by something the change did;
`causes` names it. Each changed object is tried on its own against the base (a what-if
copy, re-auditing only the namespaces of the findings in question); a finding that no
single change reproduces is put down to the changed objects of its namespace.
"""

from __future__ import annotations

from dataclasses import replace

from auditor.core import kinds as k
from auditor.change.apply import Applied, Changed
from auditor.model.report import Finding, Report

# How many changed objects are tried one by one for the causes of findings (each trial is
# a what-if audit of the findings' namespaces): those nearest the findings first (their
# namespaces, then cluster-scoped objects, then the rest); past this, a finding nobody tried
# reproduces is put down to the changed objects of its namespace.
MAX_TRIALS = 8


def audit_change(applied: Applied, base_report: Report, report: Report, trial=None) -> Report:
    """`report` (the combined state's, finished) cut to the findings the change adds,
    with `change` saying what it added and resolved. `trial(changed, findings)` returns
    the identities among `findings` that the one change `changed` brings about alone
    (None: attribute by namespace only)."""
    before = {f.identity() for f in base_report.findings}
    after = {f.identity() for f in report.findings}
    added = [f for f in report.findings if f.identity() not in before]
    resolved = [f for f in base_report.findings if f.identity() not in after]
    added = attribute(applied, added, trial)
    change = {
        **applied.record(),
        "added": [f.to_dict() for f in added],
        "resolved": [f.to_dict() for f in resolved],
        "objects": [c.to_dict() for c in applied.all_changed()],
    }
    return replace(report, findings=added, change=change)


def attribute(applied: Applied, findings: list[Finding], trial=None) -> list[Finding]:
    """The findings, each on an object the change did not write naming the changes that
    cause it."""
    own = {(c.cluster, c.key) for c in applied.all_changed() if not c.deleted}
    pending = [f for f in findings if (f.object.cluster, f.object.key) not in own]
    if not pending:
        return findings
    causes: dict[int, list[Changed]] = {}
    changed = applied.all_changed()
    if trial is not None:
        namespaces = {f.object.namespace for f in pending}
        nearest = sorted(changed, key=lambda c: (c.key[1] not in namespaces, c.key[1] is not None))
        for item in nearest[:MAX_TRIALS]:
            hit = trial(item, pending)
            for f in pending:
                if f.identity() in hit:
                    causes.setdefault(id(f), []).append(item)
    out = []
    for f in findings:
        if (f.object.cluster, f.object.key) in own:
            out.append(f)
            continue
        named = causes.get(id(f)) or _nearby(changed, f)
        out.append(replace(f, causes=[c.to_dict() for c in named]))
    return out


def what_if_trial(base_ctx, combined, rules):
    """A `trial` for `attribute`: the base with one change applied (facts.derive shares
    what it cannot touch), audited on the findings' namespaces."""
    from auditor.engine import evaluate
    from auditor.facts.derive import derive

    def trial(item: Changed, findings: list[Finding]) -> set[tuple]:
        if item.deleted:
            ctx = derive(base_ctx, (), {item.key})
        else:
            ctx = derive(base_ctx, [combined.get(*item.key)])
        namespaces = {f.object.namespace for f in findings}
        names = {f.object.name for f in findings if f.object.namespace is None}
        subjects = [o for o in ctx.snapshot if o.namespace in namespaces or o.namespace is None and o.name in names]
        return {f.identity() for f in evaluate(ctx, rules, subjects=subjects, jobs=1).findings}

    return trial


def _nearby(changed: list[Changed], finding: Finding) -> list[Changed]:
    """The changed objects of the finding's namespace and cluster, and any changed
    Namespace or cluster-scoped object there: the likeliest causes where no single one
    is."""
    o = finding.object
    return [c for c in changed if c.cluster == o.cluster
            and (c.key[1] == o.namespace or c.key[1] is None and (c.key[0] != k.NAMESPACE or c.key[2] == o.namespace))]
