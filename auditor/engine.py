"""Evaluate rules over facts: a context (the indexed snapshot) and rules in, a Report out.
What stays behind between audits in one process is in MEMORY (bounded); it changes how
fast an audit runs, never what it reports."""

from __future__ import annotations

import marshal
from dataclasses import replace
from collections import defaultdict

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.subjects import facts_for
from auditor.model.report import Finding, ObjectRef, Report
from auditor.rulebook import SEVERITIES, Rule
from auditor.rulebook.cel import VARIABLES, CelError, get_backend
from auditor.rulebook.reads import Reads, project_reads, top_reads
from auditor.model.snapshot import K8sObject, Snapshot
from auditor.core.workers import auto_jobs, map_shares, split


def cluster_object(name: str) -> K8sObject:
    """The subject of rules about the cluster as a whole (a component or CRD that is missing)."""
    return K8sObject({"apiVersion": "mesh-audit.io/v1", "kind": "Cluster", "metadata": {"name": name}})


def evaluate(ctx: Context, rules: list[Rule], backend=None, jobs: int | None = None,
             subjects: list[K8sObject] | None = None, cluster: bool = True) -> Report:
    """Findings of `rules` on the context's snapshot, evaluated with the CEL runtime the
    rules were compiled for. `jobs` caps the processes that evaluate rules (default:
    auto_jobs()); a large audit forks, with the same report as one process. `subjects`
    limits the audit to these objects (and the cluster as a whole, unless `cluster` is
    false): what a plan re-audits when one namespace moves."""
    backend = backend or next((r.backend for r in rules if r.backend is not None), None) or get_backend()
    snapshot = ctx.snapshot
    version = ctx.installation.istio_version
    active = _active(rules, version)
    by_kind: dict[str, list[Rule]] = defaultdict(list)
    for rule in active:
        for kind in rule.kinds:
            by_kind[kind].append(rule)

    subjects = list(snapshot) if subjects is None else list(subjects)
    if k.CLUSTER in by_kind and cluster:
        subjects.append(cluster_object(ctx.options.cluster_name))
    # Replicas of one owner with equal signatures are one workload (ctx.workloads):
    # evaluated once, on the first of them, and counted `count` times.
    subjects = [obj for obj in subjects if obj.gk in by_kind and not _is_replica(obj, ctx)]
    kinds = {obj.gk for obj in subjects}
    combined = {gk: _combined_program(backend, by_kind[gk]) for gk in kinds}
    reads = {gk: (reads_of(by_kind[gk], when_only=True), reads_of(by_kind[gk])) for gk in kinds}
    evaluator = _Evaluator(backend, ctx, subjects, by_kind, combined, reads)
    jobs = (jobs or auto_jobs()) if len(subjects) >= PARALLEL_MIN_SUBJECTS else 1
    if jobs > 1:
        shares = map_shares(evaluator, split([_cost(obj, ctx, by_kind) for obj in subjects], jobs))
    else:
        shares = [evaluator(range(len(subjects)))]

    found: dict[tuple, Finding] = {}
    errors: list[dict] = []
    hits: list[tuple] = []
    for share_hits, share_errors in shares:
        hits.extend(share_hits)
        errors.extend(share_errors)
    hits.sort(key=lambda hit: hit[:2])  # subject order, then rule order: as one process would record them
    for i, r, severity, message, fields in hits:
        _record(found, by_kind[subjects[i].gk][r], severity, message, subjects[i], snapshot, ctx, fields)

    findings = sorted(found.values(), key=Finding.sort_key)
    return Report(
        findings=findings,
        rules=active,
        errors=sorted(errors, key=error_order),
        warnings=[w.to_dict() for w in ctx.installation.warnings],
        objects=len(snapshot),
        istio_version=str(version) if version else None,
        version_source=ctx.installation.version_source,
        skipped_rules=sorted(r.id for r in rules if r not in active),
    )


def error_order(error: dict) -> tuple:
    """Where a rule error sits in a report's list: by rule, object, message."""
    return error["rule"] or "", error["object"], error["message"]


def _active(rules: list[Rule], version) -> list[Rule]:
    """The rules whose Istio range admits the version (kept per list and version: a plan
    evaluates the same rules hundreds of times)."""
    # The rules are kept alive with the list made of them: their ids stay theirs.
    return MEMORY.keep(MEMORY.active, (tuple(map(id, rules)), version),
                       lambda: ([r for r in rules if r.istio.admits(version)], rules))[0]


class Memory:
    """What evaluations keep across audits in one process: a plan audits the cluster again
    for every namespace it moves, and serve after every change. Per list of rules: those a
    version admits (`active`), what they read (`reads`) and their combined program
    (`combined`); per conditions and value of the mesh they read, the verdicts of
    look-alike objects (`verdicts`). Each table starts again when it reaches `limit`
    entries, so a long-lived process keeps a bounded amount."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self.active: dict[tuple, tuple] = {}
        self.reads: dict[tuple, tuple] = {}
        self.combined: dict[tuple, object] = {}
        self.verdicts: dict[tuple, dict[bytes, list | None]] = {}

    def keep(self, table: dict, key, build):
        """table[key], made by build() on first use."""
        if key not in table:
            if len(table) >= self.limit:
                table.clear()
            table[key] = build()
        return table[key]

    def forget(self) -> None:
        for table in (self.active, self.reads, self.combined, self.verdicts):
            table.clear()

    def verdict_tables(self) -> list[int]:
        """How many verdicts each table of verdicts holds."""
        return [len(table) for table in self.verdicts.values()]


MEMORY = Memory()


# Below this many objects to evaluate, forking costs more than it saves.
PARALLEL_MIN_SUBJECTS = 4000


def _cost(obj: K8sObject, ctx: Context, by_kind: dict) -> int:
    """A rough cost of evaluating one object, to balance shares: a controller the facts
    leave to its owner (a Deployment's ReplicaSet) costs next to nothing; otherwise the
    facts, plus the conditions to evaluate."""
    if obj.gk in k.WORKLOAD_GKS and ctx.workload(obj) is None:
        return 1
    return 8 + len(by_kind[obj.gk])


def _is_replica(obj: K8sObject, ctx: Context) -> bool:
    if obj.gk != k.POD:
        return False
    workload = ctx.workload(obj)
    return workload is not None and workload.obj is not obj


class _Evaluator:
    """Rules on a share of the subjects (given by index): ([(subject, rule, severity,
    message, fields)], [error]), subject and rule by their index. It changes nothing but
    its own tables of verdicts, so shares can run in separate processes.

    An object's conditions are evaluated on an activation of only what they read
    (rulebook.reads, down to the label keys they name), and objects whose such
    activations are equal share one evaluation: the verdicts are a function of it.
    Replicas of a template, services alike but for their names, policies alike but for
    their namespaces are most of a large cluster. Only an object some condition holds
    for is then evaluated for the message, severity and fields, on an activation of
    everything its kind's rules read."""

    def __init__(self, backend, ctx: Context, subjects: list[K8sObject], by_kind: dict, combined: dict, reads: dict):
        """`reads`: for each kind, what its conditions read and what all its expressions read."""
        self.backend, self.ctx, self.subjects, self.by_kind, self.combined = backend, ctx, subjects, by_kind, combined
        self.reads = {gk: read for gk, (_, read) in reads.items()}
        self.when_reads = {gk: when for gk, (when, _) in reads.items()}
        self.mesh = {gk: project_reads(ctx.mesh, read["mesh"]) for gk, read in self.reads.items()}
        self.when_mesh = {gk: project_reads(ctx.mesh, when["mesh"]) for gk, when in self.when_reads.items()}
        self.seen = {gk: _verdict_table(backend, by_kind[gk], mesh) for gk, mesh in self.when_mesh.items()}

    def __call__(self, share) -> tuple[list[tuple], list[dict]]:
        backend, ctx = self.backend, self.ctx
        hits: list[tuple] = []
        errors: list[dict] = []
        for i in share:
            obj = self.subjects[i]
            rules_here, reads = self.by_kind[obj.gk], self.reads[obj.gk]
            try:
                object_facts = facts_for(ctx, obj)
                if object_facts is None:
                    continue
                verdicts = self._verdicts(obj, object_facts)
                if verdicts is not None and True not in verdicts:
                    continue
                activation = backend.activation({"object": project_reads(obj.raw, reads["object"]),
                                                 "facts": project_reads(object_facts, reads["facts"]), "mesh": self.mesh[obj.gk]})
            except Exception as err:  # an object shape the facts layer did not foresee must not end the scan
                errors.append({"kind": "object", "rule": None, "object": obj.ref(),
                               "message": f"facts could not be computed: {err!r}"})
                continue
            for r, rule in enumerate(rules_here):
                try:
                    hit = verdicts[r] if verdicts is not None else backend.evaluate(rule.programs["when"], activation)
                    if not isinstance(hit, bool):
                        raise CelError(f"'when' gave {type(hit).__name__}, not a boolean")
                    if not hit:
                        continue
                    message = backend.evaluate(rule.programs["message"], activation)
                    if not isinstance(message, str):
                        raise CelError(f"'message' gave {type(message).__name__}, not a string")
                    severity = _severity(backend, rule, activation)
                    fields = _fields(backend, rule, activation)
                except CelError as err:
                    errors.append({"kind": "rule", "rule": rule.id, "object": obj.ref(), "message": str(err)})
                    continue
                hits.append((i, r, severity, message, fields))
        return hits, errors

    def _verdicts(self, obj: K8sObject, object_facts: dict) -> list | None:
        """Every condition of the object's kind at once (None: evaluate rule by rule),
        kept by the marshalled values they read, which are equal only for equal values
        (and not made for what marshal cannot write: such an object is evaluated alone)."""
        program, rules = self.combined[obj.gk], self.by_kind[obj.gk]
        if program is None and len(rules) == 1:
            program = rules[0].programs["when"]
        elif program is None:
            return None
        when = self.when_reads[obj.gk]
        read = project_reads(obj.raw, when["object"]), project_reads(object_facts, when["facts"])
        try:
            key = marshal.dumps(read, 2)  # version 2: no back-references, so equal values write equal bytes
        except ValueError:
            key = None
        seen = self.seen[obj.gk]
        if key in seen:
            return seen[key]
        activation = self.backend.activation({"object": read[0], "facts": read[1], "mesh": self.when_mesh[obj.gk]})
        verdicts = _all_conditions(self.backend, program, rules, activation, single=len(rules) == 1)
        if key is not None:
            seen[key] = verdicts
        return verdicts


def _verdict_table(backend, rules: list[Rule], mesh) -> dict[bytes, list | None]:
    """Where verdicts of these conditions are kept, for one value of what they read of the
    mesh: shared by every evaluation with the same conditions and mesh (a plan audits the
    cluster's look-alike objects again for every namespace it moves)."""
    try:
        key = (backend, tuple(r.when for r in rules), marshal.dumps(mesh, 2))
    except ValueError:
        return {}
    return MEMORY.keep(MEMORY.verdicts, key, dict)


def _severity(backend, rule: Rule, activation) -> str:
    if "severity_expression" not in rule.programs:
        return rule.severity
    severity = backend.evaluate(rule.programs["severity_expression"], activation)
    if severity not in SEVERITIES:
        raise CelError(f"'severity_expression' gave {severity!r}, not one of {', '.join(SEVERITIES)}")
    return severity


def _fields(backend, rule: Rule, activation) -> tuple[str, ...]:
    if "fields" not in rule.programs:
        return ()
    fields = backend.evaluate(rule.programs["fields"], activation)
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise CelError(f"'fields' gave {type(fields).__name__}, not a list of JSON Pointers")
    return tuple(fields)


def reads_of(rules: list[Rule], when_only: bool = False) -> dict[str, Reads | None]:
    """For each variable, what the rules of one kind read (rulebook.reads), in all their
    expressions or in their conditions only: what an activation passes of it. Kept per
    list of rules, like the combined programs."""
    def build():
        parts = (lambda r: (r.when,)) if when_only else (lambda r: (r.when, r.message, r.severity_expression, r.fields))
        expressions = [text for r in rules for text in parts(r) if text]
        return {variable: top_reads(expressions, variable) for variable in VARIABLES}, rules

    return MEMORY.keep(MEMORY.reads, (tuple(map(id, rules)), when_only), build)[0]


def _combined_program(backend, rules: list[Rule]):
    """Every rule's `when` as one CEL list, `[when_1, when_2, ...]`, so an object costs one
    evaluation; None for a single rule, or when the list does not compile. Compiled once
    per backend and list of conditions (a plan evaluates the same rules many times)."""
    if len(rules) < 2:
        return None
    def build():
        try:
            return backend.compile("[" + ", ".join(f"({r.when.strip()})" for r in rules) + "]")
        except CelError:
            return None

    return MEMORY.keep(MEMORY.combined, (backend, tuple(r.when for r in rules)), build)


def _all_conditions(backend, program, rules: list[Rule], activation, single: bool = False) -> list | None:
    """The verdicts of the combined program (or of the one rule's condition, `single`).
    None when there is none or it fails on this object (a condition errors); the caller
    then evaluates rule by rule, which names the failing rule."""
    if program is None:
        return None
    try:
        verdicts = backend.evaluate(program, activation)
    except CelError:
        return None
    if single:
        verdicts = [verdicts]
    if not isinstance(verdicts, list) or len(verdicts) != len(rules) or set(map(type, verdicts)) != {bool}:
        return None
    return verdicts


def _record(found: dict, rule: Rule, severity: str, message: str, obj: K8sObject, snapshot: Snapshot, ctx: Context,
            fields: tuple[str, ...] = ()) -> None:
    """Add a finding; a pod's finding goes to its top owner, once per rule and owner."""
    workload = ctx.workload(obj)
    owner = workload.owner if workload is not None else None
    cluster = ctx.options.member
    if owner is None:
        subject, ref = obj, ObjectRef(obj.api_version, obj.kind, obj.namespace, obj.name, cluster)
    else:
        subject = snapshot.get(owner.gk, owner.namespace, owner.name)
        ref = (
            ObjectRef(subject.api_version, subject.kind, subject.namespace, subject.name, cluster)
            if subject is not None
            else ObjectRef(owner.api_version, owner.kind, owner.namespace, owner.name, cluster)
        )
    key = (rule.id, ref.kind, ref.namespace, ref.name)
    from_pod = owner is not None
    pods = workload.count if from_pod else 0  # the pod and the replicas it stands for
    existing = found.get(key)
    if existing is None:
        location = snapshot.location(subject) if subject is not None else None
        observed = subject.observed if subject is not None else obj.observed
        found[key] = Finding(rule.id, severity, message, ref, location, observed, rule.confidence, pods,
                             fields=list(fields) if not from_pod else [])
        return
    if from_pod:
        found[key] = replace(existing, pods=existing.pods + pods)
    else:  # the owner's own evaluation words (and places) the finding
        found[key] = replace(existing, pods=existing.pods + pods, message=message, severity=severity, fields=list(fields))
