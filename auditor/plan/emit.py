"""Writing the change set (`plan --emit DIR`) and reading it back (for `--verify`).

    DIR/README.md                        what to apply, in which order, what to delete
    DIR/wave-1/<namespace>/namespace.yaml
                           waypoint.yaml, services.yaml, policies.yaml,
                           workloads.yaml, network-policies.yaml (those it needs)
                           deletions.txt (objects to delete by hand: never applied)
                           review.txt   (steps the plan could not write as manifests)
    DIR/.mesh-audit-plan                 which folder is which namespace and wave, and the
                                         deletions, for `--verify` (JSON)

Only namespaces that can move are written: blocked and held ones have no wave yet. A
folder is written only when it is empty or was written by an earlier `--emit`.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
from pathlib import Path

import orjson
import yaml

from auditor.core.errors import UsageError
from auditor.plan.model import Plan

MARKER = ".mesh-audit-plan"
FILE_OF_KIND = {"Namespace": "namespace.yaml", "Gateway": "waypoint.yaml", "Service": "services.yaml",
                "ServiceEntry": "services.yaml", "AuthorizationPolicy": "policies.yaml",
                "RequestAuthentication": "policies.yaml", "Telemetry": "policies.yaml", "WasmPlugin": "policies.yaml",
                "NetworkPolicy": "network-policies.yaml"}
WORKLOADS_FILE = "workloads.yaml"
# A namespace name that is also a safe folder name; others (a manifest can name a namespace
# `../../x` or `/tmp/x`) get a folder made of their safe characters and a digest.
_FOLDER = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def folder_of(namespace: str) -> str:
    """The folder a namespace's change set is written to, always one level inside its wave."""
    if _FOLDER.fullmatch(namespace) and ".." not in namespace:
        return namespace
    digest = hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"ns-{re.sub(r'[^A-Za-z0-9._-]', '_', namespace).strip('._')[:40]}-{digest}"


def emit(plan: Plan, directory: str) -> list[str]:
    """Write the change set of every namespace with a wave; the files written."""
    root = Path(directory)
    _prepare(root)
    written, index = [], {"waves": {}, "deletions": {}, "folders": {}}
    for wave in plan.waves:
        for name in wave.namespaces:
            ns = plan.namespace(name)
            folder = root / f"wave-{wave.number}" / folder_of(name)
            if folder.resolve().parent != (root / f"wave-{wave.number}").resolve():  # never outside the change set
                raise UsageError(f"--emit: namespace {name!r} cannot name a folder inside {root}")
            index["folders"][folder.name] = name
            folder.mkdir(parents=True, exist_ok=True)
            index["waves"][name] = wave.number
            index["deletions"][name] = []
            by_file: dict[str, list[dict]] = {}
            for change in ns.changes.changes:
                if change.action == "apply":
                    by_file.setdefault(FILE_OF_KIND.get(change.kind, WORKLOADS_FILE), []).append(change.manifest)
            for file, manifests in sorted(by_file.items()):
                path = folder / file
                path.write_text("---\n".join(yaml.safe_dump(m, sort_keys=False) for m in manifests))
                written.append(str(path))
            deletions = [c for c in ns.changes.changes if c.action == "delete"]
            if deletions:
                index["deletions"][name] = [{"kind": c.kind, "namespace": c.namespace, "name": c.name}
                                            for c in deletions if not c.fields]
                written.append(_lines(folder / "deletions.txt", deletions, "Delete by hand once the namespace has moved "
                                      "(mesh-audit never deletes):"))
            reviews = [c for c in ns.changes.changes if c.action == "review"]
            if reviews:
                written.append(_lines(folder / "review.txt", reviews, "Review by hand (the plan could not write these "
                                      "as manifests):"))
    (root / MARKER).write_bytes(orjson.dumps(index, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    readme = root / "README.md"
    readme.write_text(readme_text(plan))
    return [str(readme), *written]


def _prepare(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UsageError(f"--emit {root}: not a directory")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise UsageError(f"--emit {root}: the folder is not empty and was not written by mesh-audit plan")
        for old in root.glob("wave-*"):
            shutil.rmtree(old)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--emit {root}: {err.strerror or err}") from None


def _lines(path: Path, changes, heading: str) -> str:
    body = [f"# {heading}"]
    for c in changes:
        what = c.ref() + (f": {', '.join(c.fields)}" if c.fields else "")
        body.append(f"{what}  # {c.why}")
    path.write_text("\n".join(body) + "\n")
    return str(path)


def readme_text(plan: Plan) -> str:
    out = ["# Change set for moving namespaces to Istio ambient mode", "",
           f"Written by `mesh-audit plan` for Istio {plan.istio_version or '(version unknown)'}. Apply one wave at a "
           "time, in order; within a wave the namespaces are independent. Each manifest replaces the object of the "
           "same name. Where a policy's `selector` gives way to `targetRefs`, `kubectl apply` drops the selector "
           "only from objects it created (it compares with their last-applied configuration): use `kubectl replace "
           "-f` for the others, or commit the files to the repository your GitOps tool applies.", ""]
    for wave in plan.waves:
        out.append(f"## Wave {wave.number}")
        out.append("")
        out += [f"- {reason}" for reason in wave.order]
        if wave.order:
            out.append("")
        out.append("```sh")
        out.append(f"kubectl apply -R -f wave-{wave.number}/")
        for name in wave.namespaces:
            out.append(f"kubectl rollout restart deployment,statefulset,daemonset -n {shlex.quote(name)}"
                       "  # pods come back without sidecars")
        out.append("```")
        out.append("")
        for name in wave.namespaces:
            ns = plan.namespace(name)
            deletions = [c for c in ns.changes.changes if c.action == "delete"]
            reviews = [c for c in ns.changes.changes if c.action == "review"]
            if deletions or reviews:
                out.append(f"{name}: see wave-{wave.number}/{folder_of(name)}/" +
                           " and ".join(f for f, items in (("deletions.txt", deletions), ("review.txt", reviews)) if items))
                out.append("")
    waiting = [n for n in plan.namespaces if n.wave is None]
    if waiting:
        out += ["## Not in any wave", ""]
        for ns in waiting:
            why = "; ".join(r.rule for r in ns.blocking) if ns.verdict == "blocked" else "held by " + "; ".join(ns.held_by)
            out.append(f"- {ns.name} ({ns.verdict}): {why}")
        out.append("")
    return "\n".join(out)


def read_index(directory: str) -> dict:
    path = Path(directory) / MARKER
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as err:
        raise UsageError(f"{path}: not a change set written by mesh-audit plan ({err})") from None
