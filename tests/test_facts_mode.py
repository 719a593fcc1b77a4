"""Evidence C.1 (injection webhook cases + injectRequired) and C.2 (ambient enrollment)."""

from __future__ import annotations

import pytest

from auditor.facts import mode as m
from auditor.facts.mesh import InjectorSettings, Installation
from conftest import context_of

INJ = InjectorSettings()


def inject(ns_labels=None, pod_labels=None, annotations=None, host_network=False, injector=INJ, namespace="apps"):
    return m.predict_injection(namespace, ns_labels or {}, pod_labels or {}, annotations or {}, host_network, injector)


@pytest.mark.parametrize(
    "ns_labels, pod_labels, expected, revision",
    [
        ({"istio-injection": "enabled"}, {}, True, "default"),
        ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}, False, None),
        # istio-injection=enabled beats the namespace and pod revision labels.
        ({"istio-injection": "enabled", "istio.io/rev": "canary"}, {"istio.io/rev": "canary"}, True, "default"),
        # Any other istio-injection value blocks every webhook case, including pod opt-in.
        ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, False, None),
        ({"istio-injection": "disabled"}, {"istio.io/rev": "canary"}, False, None),
        # Namespace revision: pod revision ignored, pod inject=false opts out.
        ({"istio.io/rev": "canary"}, {}, True, "canary"),
        ({"istio.io/rev": "canary"}, {"istio.io/rev": "other"}, True, "canary"),
        ({"istio.io/rev": "canary"}, {"sidecar.istio.io/inject": "false"}, False, None),
        # Unlabelled namespace: pod revision selects it, pod inject=true selects default.
        ({}, {"istio.io/rev": "canary"}, True, "canary"),
        ({}, {"sidecar.istio.io/inject": "true"}, True, "default"),
        ({}, {"istio.io/rev": "canary", "sidecar.istio.io/inject": "false"}, False, None),
        ({}, {}, False, None),
        # dataplane-mode is not consulted by injection at all.
        ({"istio.io/dataplane-mode": "ambient", "istio-injection": "enabled"}, {}, True, "default"),
    ],
)
def test_webhook_cases(ns_labels, pod_labels, expected, revision):
    result = inject(ns_labels, pod_labels)
    assert result.inject is expected
    assert result.revision == revision


def test_annotation_cannot_opt_in_but_can_opt_out():
    assert inject({}, {}, {"sidecar.istio.io/inject": "true"}).inject is False
    assert inject({"istio-injection": "enabled"}, {}, {"sidecar.istio.io/inject": "false"}).inject is False


def test_label_wins_over_annotation():
    result = inject({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "true"}, {"sidecar.istio.io/inject": "false"})
    assert result.inject is True


def test_host_network_and_system_namespaces_are_never_injected():
    assert inject({"istio-injection": "enabled"}, host_network=True).inject is False
    assert inject({"istio-injection": "enabled"}, namespace="kube-system").inject is False


def test_unknown_revision_is_not_injected_when_webhooks_are_known():
    known = InjectorSettings(revisions=frozenset({"default", "1-24"}))
    assert inject({"istio.io/rev": "1-23"}, injector=known).inject is False
    assert inject({"istio.io/rev": "1-24"}, injector=known).inject is True


def test_injector_policy_and_selectors():
    disabled = InjectorSettings(policy="disabled")
    assert inject({"istio-injection": "enabled"}, injector=disabled).inject is False
    assert inject({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "true"}, injector=disabled).inject is True
    never = InjectorSettings(never_inject=[{"matchLabels": {"job": "migrate"}}])
    assert inject({"istio-injection": "enabled"}, {"job": "migrate"}, injector=never).inject is False
    always = InjectorSettings(policy="disabled", always_inject=[{"matchLabels": {"team": "core"}}])
    assert inject({"istio-injection": "enabled"}, {"team": "core"}, injector=always).inject is True


def test_namespaces_by_default():
    auto = InjectorSettings(namespaces_by_default=True)
    assert inject({}, {}, injector=auto).inject is True
    assert inject({}, {}, injector=auto, namespace="kube-public").inject is False
    assert inject({}, {"sidecar.istio.io/inject": "false"}, injector=auto).inject is False


SETTINGS = Installation()


@pytest.mark.parametrize(
    "ns_labels, pod_labels, expected",
    [
        ({"istio.io/dataplane-mode": "ambient"}, {}, True),
        ({"istio.io/dataplane-mode": "ambient"}, {"istio.io/dataplane-mode": "none"}, False),
        # Any pod value other than none stays enrolled in an ambient namespace.
        ({"istio.io/dataplane-mode": "ambient"}, {"istio.io/dataplane-mode": "sidecar"}, True),
        # The pod label alone enrolls, whatever the namespace says.
        ({}, {"istio.io/dataplane-mode": "ambient"}, True),
        ({"istio.io/dataplane-mode": "none"}, {"istio.io/dataplane-mode": "ambient"}, True),
        # Only the exact value counts.
        ({"istio.io/dataplane-mode": "Ambient"}, {}, False),
        ({}, {}, False),
    ],
)
def test_ambient_intent(ns_labels, pod_labels, expected):
    assert m.ambient_intent(ns_labels, pod_labels, SETTINGS).intends is expected


def test_custom_enablement_selectors():
    settings = Installation(enablement_selectors=[{"podSelector": {"matchLabels": {"mesh": "ambient"}}}])
    assert m.ambient_intent({}, {"mesh": "ambient"}, settings).intends is True
    assert m.ambient_intent({"istio.io/dataplane-mode": "ambient"}, {}, settings).intends is False


def ns(name, **labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(name, namespace, labels=None, annotations=None, observed=False, host_network=False, containers=("app",), init=()):
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}, "annotations": annotations or {}},
        "spec": {
            "hostNetwork": host_network,
            "containers": [{"name": c} for c in containers],
            "initContainers": [dict(name=c, restartPolicy="Always") for c in init],
        },
    }
    if observed:
        doc["metadata"]["uid"] = f"uid-{name}"
        doc["status"] = {"phase": "Running"}
    return doc


AMBIENT = {"istio.io/dataplane-mode": "ambient"}


def modes(*docs):
    facts = context_of(*docs)
    return {w.obj.name: w for w in facts.workloads}


def test_sidecar_wins_over_ambient():
    w = modes(ns("both", **AMBIENT, **{"istio-injection": "enabled"}), pod("p", "both"))["p"]
    assert (w.predicted_mode, w.blocked_by) == ("sidecar", "sidecar")


def test_cni_excluded_namespace_and_host_network_are_not_captured():
    ws = modes(ns("kube-system", **AMBIENT), pod("a", "kube-system"), ns("apps", **AMBIENT), pod("b", "apps", host_network=True))
    assert (ws["a"].predicted_mode, ws["a"].blocked_by) == ("none", "excluded-namespace")
    assert (ws["b"].predicted_mode, ws["b"].blocked_by) == ("none", "host-network")


def test_observed_mode_from_redirection_and_proxy():
    ws = modes(
        ns("apps", **AMBIENT),
        pod("enrolled", "apps", annotations={"ambient.istio.io/redirection": "enabled"}, observed=True),
        pod("not-captured", "apps", observed=True),
        pod("injected", "apps", containers=("app", "istio-proxy"), observed=True),
        pod("native", "apps", init=("istio-proxy",), observed=True),
    )
    assert ws["enrolled"].observed_mode == "ambient"
    assert ws["not-captured"].observed_mode == "none"
    assert ws["not-captured"].predicted_mode == "ambient"
    assert ws["injected"].observed_mode == "sidecar"
    assert ws["native"].observed_mode == "sidecar" and ws["native"].native_sidecar


def test_declared_templates_have_no_observed_mode():
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "apps"},
        "spec": {"template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c"}]}}},
    }
    w = modes(ns("apps", **AMBIENT), deploy)["d"]
    assert (w.observed_mode, w.mode, w.is_template) == (None, "ambient", True)


def test_namespace_in_ambient():
    assert m.namespace_in_ambient(AMBIENT)
    assert not m.namespace_in_ambient({**AMBIENT, "istio-injection": "enabled"})
    assert not m.namespace_in_ambient({**AMBIENT, "istio.io/rev": "1-24"})
    assert m.namespace_in_ambient({**AMBIENT, "istio.io/rev": ""})


@pytest.mark.parametrize("ns_labels, pod_labels, opt_in, blocked_by", [
    ({"istio-injection": "disabled"}, {"istio.io/rev": "canary"}, "istio.io/rev=canary", "istio-injection=disabled"),
    ({"istio-injection": "off"}, {"sidecar.istio.io/inject": "true"}, "sidecar.istio.io/inject=true", "istio-injection=off"),
    # istio.io/rev names the opt-in even when inject=true is there too
    ({"istio-injection": "disabled"}, {"istio.io/rev": "r", "sidecar.istio.io/inject": "true"}, "istio.io/rev=r",
     "istio-injection=disabled"),
    ({"istio-injection": "enabled"}, {"istio.io/rev": "canary"}, "istio.io/rev=canary", None),  # enabled lets it through
    ({}, {"istio.io/rev": "canary"}, "istio.io/rev=canary", None),  # no namespace label: the object webhooks see it
    ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "false"}, None, None),  # no opt-in to block
])
def test_opt_in_blocked_by_the_namespace_label(ns_labels, pod_labels, opt_in, blocked_by):
    assert m.injection_opt_in(pod_labels) == opt_in
    assert m.opt_in_blocked_by(ns_labels, pod_labels) == blocked_by


def test_a_namespace_selector_sees_the_name_label_the_api_server_sets():
    """istio-cni enablement selectors may name a namespace by kubernetes.io/metadata.name,
    which manifests never write and the API server always sets."""
    by_name = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}
    settings = Installation(enablement_selectors=[by_name])
    assert m.ambient_intent({}, {}, settings, "shop").intends
    assert not m.ambient_intent({}, {}, settings, "billing").intends
    lying = {"kubernetes.io/metadata.name": "billing"}  # the API server overwrites what a manifest says
    assert m.ambient_intent(lying, {}, settings, "shop").intends
