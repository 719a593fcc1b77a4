"""Istio's own components as a cluster shows them. The collector uses this to know which
of Istio's ConfigMaps to read; facts use it for settings and versions."""

from __future__ import annotations

from auditor.model.snapshot import as_list

CNI_NODE = "istio-cni-node"


def is_injector_webhook(raw: dict) -> bool:
    """A MutatingWebhookConfiguration of Istio's sidecar injector (any revision or tag)."""
    return any(
        isinstance(h, dict) and str(h.get("name", "")).endswith("sidecar-injector.istio.io")
        for h in as_list(raw.get("webhooks"))
    )


def is_istiod(name: str, labels) -> bool:
    """istiod's Deployment or pods, of the default revision (`istiod`) or another (`istiod-<rev>`)."""
    app = labels.get("app") if isinstance(labels, dict) else None
    return name == "istiod" or name.startswith("istiod-") or app == "istiod"
