"""mesh-audit as a library: load what to audit, audit it, read the Report.

    from auditor import api

    snapshot = api.load(["k8s/"])                       # files, dirs, dumps, snapshots, "-"
    report = api.audit(snapshot, api.Settings(istio_version="1.24"))
    for finding in report.findings:
        print(finding.severity, finding.rule, finding.object, finding.message)

`api.scan(inputs, settings)` does both. Without inputs, `load` reads the cluster of the
current kubeconfig context (`api.ClusterSource` picks another). Several clusters are
audited as one mesh when `load` is given a mapping of cluster names to inputs:

    mesh = api.load({"east": api.ClusterSource(context="east"), "west": ["west-dump.json"]})
    report = api.audit(mesh)                            # each finding's object.cluster says where

Every command of the CLI is this module plus option parsing, rendering and an exit code.

Problems in the input do not raise: they are in `snapshot.errors` (a file that does not
parse) and `snapshot.warnings`, and in the report. What cannot go on raises: UsageError
(a path that does not exist, a bad rule file or configuration) or ClusterError (the
cluster cannot be read at all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from auditor.model.clusters import ClusterSource, Clusters
from auditor.gate.config import Config, load_config
from auditor.core.errors import UsageError
from auditor.facts.context import Context
from auditor.model.report import Report
from auditor.rulebook import Rule, builtin_rules_dir, load_rules, rule_names
from auditor.model.snapshot import K8sObject, Snapshot
from auditor.gate.suppress import cli_ignores, read_baseline
from auditor.core.versions import Version
from auditor.pipeline import context_of, findings_of, version_of
from auditor.core.words import did_you_mean

__all__ = ["ClusterSource", "Clusters", "Settings", "apply", "audit", "audit_change", "context", "load", "plan", "scan",
           "UsageError"]


@dataclass
class Settings:
    """Everything an audit takes besides the objects (each default is the CLI's)."""

    istio_version: str | Version | None = None  # default: the istiod image tag in the input
    compare_version: str | Version | None = None  # also audit for this version and compare
    rules: list[Rule] | None = None  # default: the built-in rules plus rules_dirs
    rules_dirs: tuple[str, ...] = ()
    config: Config | str | None = None  # a Config, a .mesh-audit.yaml path, or none
    select: tuple[str, ...] = ()  # only these rule ids or aliases
    ignores: tuple[str, ...] = ()  # RULE or RULE=Kind/ns/name-glob, as --ignore
    baseline: str | None = None  # a baseline file: findings in it do not count
    source_map: str | None = None  # a GitOps checkout to point live findings at
    namespaces: tuple[str, ...] = ()  # report only these (default: what was collected)
    cluster_name: str | None = None
    category: str | None = None  # SARIF automationDetails.id (default: mesh-audit/<cluster-name>/, else none)
    repo_root: str | None = None  # file paths in SARIF and annotations (default: the git work tree, else cwd)
    strict_maturity: bool = False
    sidecar_scope_threshold: int = 50
    fail_on: str | None = None  # default: the config's, else error (warning under strict)
    jobs: int | None = None  # processes for large inputs (default: CPUs, at most 4)
    exclude: tuple[str, ...] = ()  # gitignore-style paths not to scan (relative to the working directory)
    gitignore: bool = True  # inside a git work tree, skip what git ignores
    require_rendering: bool = False  # a chart or kustomization that cannot be rendered makes the audit incomplete
    today: date | None = None  # when exemptions expire (default: today)
    # Rule fixtures simulate a cluster that collected these resource types (`# collected:`).
    collected: frozenset | None = field(default=None, repr=False)
    resolved: bool = field(default=False, repr=False)  # rules and config loaded (see resolve)
    names: dict = field(default_factory=dict, repr=False)  # every rule id and alias -> id, once resolved
    exemptions: list = field(default_factory=list, repr=False)  # the config's and ignores, once resolved
    baseline_entries: set = field(default_factory=set, repr=False)  # the baseline's findings, once resolved


def load(inputs=None, *, snapshot: str | None = None, jobs: int | None = None, stdin=None, follow_symlinks: bool = False,
         settings: Settings | None = None, progress: bool = False) -> Snapshot | Clusters:
    """The objects to audit, with `collection` (where they came from), `errors` and
    `warnings`. `inputs`: paths (files, directories, dumps, snapshots, "-" for stdin), or
    a ClusterSource, or None for the current kubeconfig context; or a mapping of cluster
    names to any of these, for an audit of several clusters (Clusters; live ones are
    collected concurrently). `snapshot`: a snapshot file, which must be one (a snapshot
    of several clusters gives Clusters). Symlinks in a directory are followed only within
    it, unless `follow_symlinks`. `settings` say what to exclude and how to render Helm charts.
    `progress`: a line on stderr (a terminal) while large files are read."""
    from auditor.collect.snapshot.read import load_cluster_snapshot
    from auditor.collect.sources import load_cluster, load_files

    options = _file_options(resolve(settings) if settings is not None else None)
    if isinstance(inputs, dict):
        from auditor.multicluster import check_members, load_clusters

        check_members(inputs)
        return load_clusters({name: source if isinstance(source, ClusterSource) else
                              load([str(p) for p in ([source] if isinstance(source, (str, os.PathLike)) else source)],
                                   jobs=jobs, stdin=stdin, follow_symlinks=follow_symlinks, settings=settings)
                              for name, source in inputs.items()})
    if snapshot is not None:
        if inputs:
            raise UsageError("use -f or --snapshot, not both")
        return load_cluster_snapshot(snapshot) or load_files([snapshot], jobs, stdin, snapshot_only=True,
                                                             progress=progress)
    if inputs is None or isinstance(inputs, ClusterSource):
        return load_cluster(inputs or ClusterSource())
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    several = [p for p in inputs if load_cluster_snapshot(str(p), peek=True)]
    if several:
        if len(several) < len(inputs):
            raise UsageError("a snapshot of several clusters is audited on its own or with other such snapshots, "
                             "not with other inputs (name those: -f NAME=PATH)", str(several[0]))
        return _joined([load_cluster_snapshot(str(p)) for p in several], several)
    return load_files([str(p) for p in inputs], jobs, stdin, follow_symlinks=follow_symlinks, progress=progress, **options)


def _joined(parts: list[Clusters], paths: list) -> Clusters:
    """Snapshots of clusters read together: every cluster name once."""
    members: dict = {}
    for part, path in zip(parts, paths):
        for name, snapshot in part.items():
            if name in members:
                raise UsageError(f"cluster {name!r} is also in an earlier snapshot", str(path))
            members[name] = snapshot
    return Clusters(members)


def _file_options(settings: Settings | None) -> dict:
    """Exclusions and rendering from the (resolved) settings and their configuration."""
    from auditor.collect.excludes import Excluder
    from auditor.collect.render import RenderSettings

    if settings is None:
        return {"excluder": Excluder(gitignore=True)}
    config = settings.config
    patterns = [(p, os.curdir) for p in settings.exclude] + [(p, str(config.folder)) for p in config.exclude]
    return {"excluder": Excluder(patterns, gitignore=settings.gitignore and config.gitignore),
            "render": RenderSettings(charts=config.helm_charts),
            "require_rendering": settings.require_rendering or config.require_rendering}


def scan(inputs=None, settings: Settings | None = None, *, snapshot: str | None = None, stdin=None) -> Report:
    """load() then audit()."""
    settings = resolve(settings or Settings())
    return audit(load(inputs, snapshot=snapshot, jobs=settings.jobs, stdin=stdin, settings=settings), settings)


def context(snapshot: Snapshot | Clusters, settings: Settings | None = None, *, cluster: str | None = None) -> Context:
    """The indexed snapshot facts are read from (what `explain` and `plan` inspect); for
    several clusters, the one named `cluster`, joined to the mesh's topology."""
    settings = resolve(settings or Settings())
    if isinstance(snapshot, Clusters):
        from auditor.multicluster import contexts

        if cluster not in snapshot.members:
            raise UsageError(f"name the cluster (one of {', '.join(snapshot.members)})" if cluster is None
                             else f"no cluster named {cluster!r} (the input has {', '.join(snapshot.members)})")
        return contexts(snapshot, settings)[cluster]
    if cluster is not None:
        raise UsageError(f"--cluster {cluster}: the input holds one cluster")
    return context_of(snapshot, settings)


def audit(snapshot: Snapshot | Clusters, settings: Settings | None = None, *, ctx: Context | None = None) -> Report:
    """The finished report: findings of the rules in force, the collection record, input
    problems, scope, source map, suppressions and baseline applied. Several clusters
    (Clusters) are audited as one mesh, each finding naming its cluster."""
    from auditor.gate.finish import finish

    settings = resolve(settings or Settings())
    if isinstance(snapshot, Clusters):
        from auditor.multicluster import audit_clusters

        return audit_clusters(snapshot, settings)
    ctx = ctx or context(snapshot, settings)
    report = findings_of(ctx, settings)
    if settings.compare_version is not None:
        report = replace(report, comparison=_compare(snapshot, settings.rules, settings, report))
    return finish(report, snapshot, settings)


def apply(paths=(), against="cluster", *, deletes: tuple[str, ...] = (), diff_base: str | None = None,
          namespace: str | None = None, settings: Settings | None = None, jobs: int | None = None, stdin=None,
          follow_symlinks: bool = False):
    """A change judged against the cluster it lands in (auditor.change.Applied): the
    manifests in `paths` (as `load` reads them; a mapping of cluster names to paths pins
    changes to clusters of a base of several, the key None meaning every cluster) laid
    over `against` (a snapshot file, "cluster" for the current kubeconfig context, a
    ClusterSource, or several by name) as `kubectl apply` would, then `deletes` (`Kind/ns/name`) and, with
    `diff_base`, what the paths held at that git ref and no longer hold, removed.
    Namespaced objects that name no namespace land in `namespace` (default: default).
    `audit(applied.combined)` audits the result; `audit_change` what it adds."""
    from auditor.change.load import apply_paths

    settings = resolve(settings or Settings())
    if against == "cluster" or isinstance(against, (ClusterSource, dict)):
        base = load(against if against != "cluster" else None)
    else:
        base = load(snapshot=str(against), jobs=jobs)

    def read(paths: list[str], charts: dict | None = None) -> Snapshot:
        """The change's files as a scan reads them (`charts`: configured charts, moved)."""
        then = settings if charts is None else replace(settings, config=replace(settings.config, helm_charts=charts))
        loaded = load([str(p) for p in paths], jobs=jobs, stdin=stdin if charts is None else None,
                      follow_symlinks=follow_symlinks, settings=then)
        if isinstance(loaded, Clusters):
            raise UsageError("a change is manifests to apply, not a snapshot of several clusters", str(paths[0]))
        return loaded

    return apply_paths(base, dict(paths) if isinstance(paths, dict) else {None: list(paths)}, read, deletes=deletes,
                       diff_base=diff_base, namespace=namespace, excluder=_file_options(settings)["excluder"],
                       charts=settings.config.helm_charts)


def audit_change(applied, settings: Settings | None = None, *, changes_only: bool = False) -> Report:
    """The audit of `applied.combined`; with `changes_only`, only what the change adds
    (`report.change` lists what it adds and resolves, and each finding on an object the
    change did not write names its causes). The base is audited too, sharing what the
    change cannot touch."""
    from auditor.change.compare import audit_change as compare, what_if_trial
    from auditor.facts.derive import derive

    settings = resolve(settings or Settings())
    if not changes_only:
        return audit(applied.combined, settings)
    if isinstance(applied.base, Clusters):
        return compare(applied, audit(applied.base, settings), audit(applied.combined, settings))
    base_ctx = context(applied.base, settings)
    base_report = audit(applied.base, settings, ctx=base_ctx)
    changed = applied.changed[None]
    put = [applied.combined.get(*c.key) for c in changed if not c.deleted]
    ctx = derive(base_ctx, put, {c.key for c in changed if c.deleted}, snapshot=applied.combined)
    report = audit(applied.combined, settings, ctx=ctx)
    return compare(applied, base_report, report, what_if_trial(base_ctx, applied.combined, settings.rules))


def plan(snapshot: Snapshot, settings: Settings | None = None, *, namespaces: tuple[str, ...] = (),
         include_unmeshed: bool = False, nodes: int | None = None, emit: str | None = None, verify: bool = False):
    """Which namespaces of `snapshot` can move to ambient (auditor.plan.model.Plan): for
    every namespace in sidecar mode (or only `namespaces`; with `include_unmeshed`, also
    those not in the mesh), a verdict with the findings behind it, the change set, the
    wave to move in, and the cost. `nodes` counts nodes where the input has no Node list.
    `emit` writes the change set to that folder; `verify` re-audits the cluster with the
    written change set applied wave by wave (in a temporary folder without `emit`) and
    records the outcome in `plan.verification`. UsageError for a namespace the input does
    not have, or a folder that cannot be written."""
    import tempfile

    from auditor.plan.emit import emit as write_change_set
    from auditor.plan.planner import PlanOptions, make_plan
    from auditor.plan.verify import verify as verify_change_set

    settings = resolve(settings or Settings())
    if isinstance(snapshot, Clusters):
        raise UsageError("plan reads one cluster: plan each cluster of the mesh on its own")
    ctx = context(snapshot, settings)
    made, whatif = make_plan(snapshot, settings, PlanOptions(tuple(namespaces), include_unmeshed, nodes), ctx)
    if emit is not None:
        write_change_set(made, emit)
        made = replace(made, emitted=emit)
    if verify:
        if emit is not None:
            made = replace(made, verification=verify_change_set(made, ctx, whatif.findings, emit, settings))
        else:
            with tempfile.TemporaryDirectory(prefix="mesh-audit-plan-") as folder:
                write_change_set(made, folder)
                verification = verify_change_set(made, ctx, whatif.findings, folder, settings)
            made = replace(made, verification={**verification, "directory": None})
    return made


def resolve(settings: Settings) -> Settings:
    """The settings with their rules and configuration loaded: the rules in force
    (configured, selected) and the Config. Loading happens once; UsageError on a bad
    rule file, configuration or --select."""
    if settings.resolved:
        return settings
    rules = settings.rules if settings.rules is not None else load_rules(
        [builtin_rules_dir(), *(Path(d) for d in settings.rules_dirs)])
    config = settings.config if isinstance(settings.config, Config) else load_config(settings.config, rules)
    names = rule_names(rules)
    rules = config.apply(rules)
    if settings.select:
        rules = _select(rules, settings.select, names)
    exemptions = config.exemptions + cli_ignores(list(settings.ignores), names)
    known = read_baseline(settings.baseline) if settings.baseline is not None else set()
    return replace(settings, rules=rules, config=config, resolved=True, names=names, exemptions=exemptions,
                   baseline_entries=known)


def _select(rules: list[Rule], select: tuple[str, ...], names: dict[str, str]) -> list[Rule]:
    wanted = set()
    for item in select:
        for name in filter(None, (n.strip() for n in item.split(","))):
            if name not in names:
                raise UsageError(f"--select {name}: no rule named '{name}'{did_you_mean(name, names)} "
                                 "(see 'mesh-audit rules list')")
            wanted.add(names[name])
    return [r for r in rules if r.id in wanted]


def _compare(snapshot: Snapshot, rules: list[Rule], settings: Settings, target: Report) -> dict:
    from auditor.gate.compare import compare

    if target.istio_version is None:
        raise UsageError("--compare-version needs the target version: pass --istio-version "
                         "(none was detected in the input)")
    current = context_of(snapshot, settings, version=version_of(settings.compare_version, "--compare-version"))
    return compare(findings_of(current, settings, rules), target)


def find_object(snapshot: Snapshot, ref: str) -> K8sObject:
    """An object by `Kind/namespace/name` (or `Kind/name`); UsageError when there is no
    such object or the reference is ambiguous."""
    from auditor.explain import find_object as find

    return find(snapshot, ref)


def save_snapshots(sources: dict[str, ClusterSource], path: str) -> dict[str, tuple[dict, int]]:
    """Collect several clusters at once into one snapshot file (one segment per cluster,
    named by its key); returns each cluster's collection record and object count. A
    cluster that cannot be reached is written with no objects and its gap."""
    from auditor.multicluster import save_clusters

    return save_clusters(sources, path)


def save_snapshot(source: ClusterSource, path: str, cluster: str | None = None, clusters: list[str] | None = None):
    """Collect the cluster and write a snapshot file (`.json`, or `.json.gz` compressed),
    atomically; returns the Collection record (objects counted, gaps). Large lists are
    serialized page by page as they arrive, so memory stays a fraction of the cluster's."""
    from auditor.collect.sources import save_cluster

    return save_cluster(source, path, cluster, clusters)
