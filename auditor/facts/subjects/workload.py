"""Facts of a workload: a running Pod, or a controller's pod template."""

from __future__ import annotations

import auditor.facts.mode as m
from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.waypoint import legacy_reference
from auditor.facts.workloads import Workload
from auditor.model.snapshot import K8sObject, as_list
from auditor.core.versions import Version

KINDS = k.WORKLOAD_GKS
NATIVE_SIDECAR = "sidecar.istio.io/nativeSidecar"
V1_27 = Version(1, 27)
K8S_NATIVE_SIDECARS = Version(1, 29)


def build(ctx: Context, obj: K8sObject) -> dict | None:
    w = ctx.workload(obj)
    if w is None:
        return None  # a ReplicaSet/Job run by its owner, or a finished pod
    return {
        "role": w.role,
        "mode": w.mode,
        "predicted_mode": w.predicted_mode,
        "observed_mode": w.observed_mode,
        "intends_ambient": w.intent.intends,
        "ambient_reason": w.intent.reason,
        "ambient_blocked_by": w.blocked_by,
        "sidecar_predicted": w.injection.inject,
        "injection_reason": w.injection.reason,
        "injection_opt_in": m.injection_opt_in(w.labels),
        "injection_opt_in_blocked_by": m.opt_in_blocked_by(ctx.ns_labels(w.namespace), w.labels),
        "revision": w.injection.revision,
        "has_sidecar": w.sidecar,
        "native_sidecar": w.native_sidecar,
        "redirection": w.redirection,
        "host_network": w.host_network,
        "owner": f"{w.owner.kind} {w.owner.namespace}/{w.owner.name}" if w.owner else None,
        "waypoint": ctx.binding(obj).to_facts(),
        **legacy_reference(w.labels, w.annotations),
        "kind": obj.kind,
        "is_template": w.is_template,
        "labels": w.labels,
        "annotations": w.annotations,
        "namespace_labels": ctx.ns_labels(w.namespace),
        "runs_to_completion": _runs_to_completion(obj),
        "mode_drift": _mode_drift(w),
        "sidecar_is_native": _sidecar_is_native(ctx, w),
        "at": _pointers(obj),
    }


def _pointers(obj: K8sObject) -> dict:
    """Where the pod's labels, annotations and spec are written in this object."""
    base = {"Pod": "", "CronJob": "/spec/jobTemplate/spec/template"}.get(obj.kind, "/spec/template")
    return {"labels": f"{base}/metadata/labels", "annotations": f"{base}/metadata/annotations", "spec": f"{base}/spec"}


def _mode_drift(w: Workload) -> str | None:
    """For a running pod whose mode differs from what its labels would give a new pod: how."""
    if w.observed_mode is None or w.observed_mode == w.predicted_mode:
        return None
    return f"runs in {w.observed_mode} mode, but a pod created now would run in {w.predicted_mode} mode"


def _runs_to_completion(obj: K8sObject) -> bool:
    """A Job, a CronJob, or a pod a Job runs."""
    if obj.kind in ("Job", "CronJob"):
        return True
    return obj.kind == "Pod" and any(
        isinstance(r, dict) and r.get("kind") == "Job" for r in as_list(obj.metadata.get("ownerReferences"))
    )


def _sidecar_is_native(ctx: Context, w: Workload) -> bool:
    """Whether the workload's istio-proxy is (or will be) a native sidecar: an init container
    with restartPolicy Always. The injector makes it one from Istio 1.27 on Kubernetes 1.29+,
    or when the pod asks with the sidecar.istio.io/nativeSidecar annotation."""
    if w.sidecar:
        return w.native_sidecar
    asked = w.annotations.get(NATIVE_SIDECAR)
    if asked in ("true", "false"):
        return asked == "true"
    istio, kube = ctx.installation.istio_version, ctx.options.kubernetes_version
    return istio is not None and istio >= V1_27 and (kube is None or kube >= K8S_NATIVE_SIDECARS)
