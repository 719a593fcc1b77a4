"""Deterministic synthetic clusters for the benchmark.

    python bench/generate.py --pods 10000 --out bench/data/10k

writes, for a cluster of about that many pods:
- manifests/<namespace>.yaml: the declared configuration a GitOps repository holds
  (Namespaces, Deployments, Services, waypoints, Istio and Gateway API resources);
- yaml/<namespace>.yaml: everything the cluster holds, pods included, as YAML (what
  `kubectl get -o yaml` per namespace gives; the YAML throughput benchmark reads these);
- dump.json: what `kubectl get <everything> -A -o json` returns, pods and ReplicaSets
  with owner references and status included, indented as kubectl indents it;
- dump.yaml: the same List as `kubectl get ... -o yaml` writes it (keys sorted);
- snapshot.json: the same objects as a `mesh-audit snapshot`.

The mix is a mesh in migration: 40% ambient namespaces (half with a namespace
waypoint), 40% sidecar namespaces, 20% outside the mesh; about ten pods per Deployment;
a Service per Deployment; AuthorizationPolicies with and without L7 rules, some by
targetRefs; VirtualServices and DestinationRules. The same --seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


ISTIO = "1.24.2"
TEAMS = ["payments", "catalog", "search", "checkout", "identity", "ledger", "media", "ads", "growth", "ops"]
IMAGES = ["registry.example.com/{team}/{app}:{v}", "ghcr.io/example/{app}:{v}", "example/{app}:{v}"]
MODES = ["ambient"] * 4 + ["sidecar"] * 4 + ["plain"] * 2


def _hash(rng: random.Random, n: int = 10) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def _uid(rng: random.Random) -> str:
    h = "%032x" % rng.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:]}"


def _container(rng, team, app, version, port):
    return {
        "name": app,
        "image": rng.choice(IMAGES).format(team=team, app=app, v=version),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in (
            ("LOG_LEVEL", "info"), ("TEAM", team), ("PORT", str(port)), ("OTEL_SERVICE_NAME", app),
            ("DB_POOL_SIZE", str(rng.randint(5, 50))))],
        "resources": {"requests": {"cpu": f"{rng.choice([50, 100, 250, 500])}m", "memory": f"{rng.choice([64, 128, 256, 512])}Mi"},
                      "limits": {"memory": f"{rng.choice([256, 512, 1024])}Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": port}, "initialDelaySeconds": 10},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }


def _istio_proxy():
    """The sidecar as the injector writes it, trimmed of nothing that matters for size."""
    return {
        "name": "istio-proxy",
        "image": f"docker.io/istio/proxyv2:{ISTIO}",
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local", "--proxyLogLevel=warning",
                 "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "env": [{"name": n, "value": v} for n, v in (
            ("PILOT_CERT_PROVIDER", "istiod"), ("CA_ADDR", "istiod.istio-system.svc:15012"), ("PROXY_CONFIG", "{}"),
            ("ISTIO_META_POD_PORTS", '[{"name":"http","containerPort":8080,"protocol":"TCP"}]'),
            ("ISTIO_META_APP_CONTAINERS", "app"), ("ISTIO_META_CLUSTER_ID", "Kubernetes"),
            ("ISTIO_META_INTERCEPTION_MODE", "REDIRECT"), ("ISTIO_META_MESH_ID", "cluster.local"),
            ("TRUST_DOMAIN", "cluster.local"))],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "periodSeconds": 15, "failureThreshold": 4},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "securityContext": {"runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"mountPath": p, "name": n} for n, p in (
            ("workload-socket", "/var/run/secrets/workload-spiffe-uds"), ("credential-socket", "/var/run/secrets/credential-uds"),
            ("istiod-ca-cert", "/var/run/secrets/istio"), ("istio-data", "/var/lib/istio/data"),
            ("istio-envoy", "/etc/istio/proxy"), ("istio-token", "/var/run/secrets/tokens"), ("istio-podinfo", "/etc/istio/pod"))],
    }


def generate(pods: int, seed: int = 7, modes: list[str] | None = None) -> dict[str, list[dict]]:
    """{"declared": [...], "observed": [...]}: manifests, and what the cluster adds.
    `modes` cycles over the namespaces (default MODES: the mix of a mesh in migration;
    ["sidecar"] gives a mesh that has not started)."""
    modes = modes or MODES
    rng = random.Random(seed)
    declared: list[dict] = []
    observed: list[dict] = []
    deployments = max(1, pods // 10)
    namespaces = max(3, deployments // 25)
    ns_modes = {}
    for i in range(namespaces):
        name = f"{TEAMS[i % len(TEAMS)]}-{i:03d}"
        mode = modes[i % len(modes)]
        labels = {"team": TEAMS[i % len(TEAMS)]}
        waypoint = mode == "ambient" and i % 2 == 0
        if mode == "ambient":
            labels["istio.io/dataplane-mode"] = "ambient"
            if waypoint:
                labels["istio.io/use-waypoint"] = "waypoint"
        elif mode == "sidecar":
            labels["istio-injection"] = "enabled"
        ns_modes[name] = (mode, waypoint)
        declared.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
        if waypoint:
            declared.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                             "metadata": {"name": "waypoint", "namespace": name, "labels": {"istio.io/waypoint-for": "service"}},
                             "spec": {"gatewayClassName": "istio-waypoint",
                                      "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}})
    names = sorted(ns_modes)
    remaining = pods
    for d in range(deployments):
        ns = names[d % len(names)]
        mode, waypoint = ns_modes[ns]
        team = ns.rsplit("-", 1)[0]
        app = f"svc-{d:05d}"
        version = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        port = rng.choice([8080, 8000, 3000, 9000])
        replicas = remaining if d == deployments - 1 else max(1, min(remaining, rng.randint(1, 19)))
        remaining = max(0, remaining - replicas)
        labels = {"app": app, "team": team, "version": f"v{version.split('.')[0]}"}
        template = {"metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}},
                    "spec": {"serviceAccountName": app, "containers": [_container(rng, team, app, version, port)],
                             "volumes": [{"name": "config", "configMap": {"name": f"{app}-config"}}],
                             "terminationGracePeriodSeconds": 30}}
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": ns, "labels": labels},
                      "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                               "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                               "template": template}}
        declared.append(deployment)
        declared.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
                         "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": port},
                                                                        {"name": "http-metrics", "port": 9090}]}})
        if d % 5 == 0:
            l7 = d % 10 == 0
            rule = {"from": [{"source": {"principals": [f"cluster.local/ns/{ns}/sa/frontend"]}}]}
            if l7:
                rule["to"] = [{"operation": {"methods": ["GET", "POST"], "paths": ["/api/*"]}}]
            spec = {"rules": [rule]}
            if waypoint and d % 15 == 0:
                spec["targetRefs"] = [{"kind": "Service", "group": "", "name": app}]
            else:
                spec["selector"] = {"matchLabels": {"app": app}}
            declared.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                             "metadata": {"name": f"{app}-callers", "namespace": ns}, "spec": spec})
        if d % 7 == 0:
            declared.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                             "metadata": {"name": f"{app}-retries", "namespace": ns},
                             "spec": {"hosts": [app], "http": [{"route": [{"destination": {"host": app}}],
                                                                 "retries": {"attempts": 3, "perTryTimeout": "2s"}}]}})
            declared.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                             "metadata": {"name": app, "namespace": ns},
                             "spec": {"host": f"{app}.{ns}.svc.cluster.local",
                                      "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 100}}}}})

        # What the cluster adds: a ReplicaSet and its running pods.
        dep_uid, rs_uid = _uid(rng), _uid(rng)
        pod_hash = _hash(rng)
        rs_name = f"{app}-{pod_hash}"
        rs_labels = {**labels, "pod-template-hash": pod_hash}
        observed.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                         "metadata": {"name": rs_name, "namespace": ns, "uid": rs_uid, "labels": rs_labels,
                                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                                                           "uid": dep_uid, "controller": True, "blockOwnerDeletion": True}]},
                         "spec": {"replicas": replicas, "selector": {"matchLabels": rs_labels},
                                  "template": {**template, "metadata": {**template["metadata"], "labels": rs_labels}}},
                         "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}})
        for r in range(replicas):
            pod_labels = dict(rs_labels)
            annotations = dict(template["metadata"]["annotations"])
            containers = [dict(c) for c in template["spec"]["containers"]]
            init = []
            if mode == "sidecar":
                annotations["sidecar.istio.io/status"] = json.dumps({"initContainers": ["istio-init"], "containers": ["istio-proxy"],
                                                                     "volumes": ["istio-envoy", "istio-data"], "revision": "default"})
                pod_labels["security.istio.io/tlsMode"] = "istio"
                pod_labels["service.istio.io/canonical-name"] = app
                containers.append(_istio_proxy())
                init.append({"name": "istio-init", "image": f"docker.io/istio/proxyv2:{ISTIO}",
                             "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT"]})
            elif mode == "ambient":
                annotations["ambient.istio.io/redirection"] = "enabled"
            spec = {**template["spec"], "containers": containers, "nodeName": f"node-{rng.randint(1, 200):03d}",
                    "serviceAccount": app, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                                     "tolerationSeconds": 300}]}
            if init:
                spec["initContainers"] = init
            ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            observed.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{rs_name}-{_hash(rng, 5)}", "generateName": f"{rs_name}-", "namespace": ns, "uid": _uid(rng),
                             "resourceVersion": str(rng.randint(10**6, 10**8)), "creationTimestamp": "2026-11-01T10:00:00Z",
                             "labels": pod_labels, "annotations": annotations,
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": rs_uid,
                                                  "controller": True, "blockOwnerDeletion": True}]},
                "spec": spec,
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": f"192.168.{rng.randint(0, 3)}.{rng.randint(1, 254)}",
                           "startTime": "2026-11-01T10:00:05Z", "qosClass": "Burstable",
                           "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-11-01T10:00:20Z"}
                                          for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                           "containerStatuses": [{"name": c["name"], "ready": True, "restartCount": 0, "image": c["image"],
                                                  "imageID": f"{c['image']}@sha256:{'%064x' % rng.getrandbits(256)}",
                                                  "containerID": f"containerd://{'%064x' % rng.getrandbits(256)}",
                                                  "started": True, "state": {"running": {"startedAt": "2026-11-01T10:00:10Z"}}}
                                                 for c in containers]},
            })
    declared += _control_plane()
    observed += [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                  "metadata": {"name": name, "namespace": "istio-system", "uid": _uid(rng), "labels": labels},
                  "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                                                                             "spec": {"containers": [{"name": "c", "image": image}]}}},
                  "status": {"desiredNumberScheduled": 200, "numberReady": 200}}
                 for name, labels, image in (("ztunnel", {"app": "ztunnel"}, f"docker.io/istio/ztunnel:{ISTIO}"),
                                             ("istio-cni-node", {"k8s-app": "istio-cni-node"}, f"docker.io/istio/install-cni:{ISTIO}"))]
    return {"declared": declared, "observed": observed}


def _control_plane() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod"}},
         "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                  "template": {"metadata": {"labels": {"app": "istiod", "sidecar.istio.io/inject": "false"}},
                               "spec": {"containers": [{"name": "discovery", "image": f"docker.io/istio/pilot:{ISTIO}"}]}}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
         "data": {"mesh": "rootNamespace: istio-system\noutboundTrafficPolicy:\n  mode: ALLOW_ANY\n"}},
    ]


def _yaml_dump(docs: list[dict], sort_keys: bool = False) -> str:
    """YAML as kubectl writes it: block style, no anchors (objects here share sub-dicts)."""
    import yaml

    class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
        def ignore_aliases(self, data):
            return True

    return yaml.dump_all(docs, Dumper=Dumper, sort_keys=sort_keys, default_flow_style=False)


def write(pods: int, out: Path, seed: int = 7, modes: list[str] | None = None) -> dict:
    cluster = generate(pods, seed, modes)
    out.mkdir(parents=True, exist_ok=True)
    manifests = out / "manifests"
    manifests.mkdir(exist_ok=True)
    by_ns: dict[str, list[dict]] = {}
    for obj in cluster["declared"]:
        ns = obj["metadata"].get("namespace") or obj["metadata"]["name"]
        by_ns.setdefault(ns, []).append(obj)
    for ns, docs in sorted(by_ns.items()):
        (manifests / f"{ns}.yaml").write_text(_yaml_dump(docs))
    everything = cluster["declared"] + cluster["observed"]
    full = out / "yaml"
    full.mkdir(exist_ok=True)
    by_ns = {}
    for obj in everything:
        by_ns.setdefault(obj["metadata"].get("namespace") or "_cluster", []).append(obj)
    for ns, docs in sorted(by_ns.items()):
        (full / f"{ns}.yaml").write_text(_yaml_dump(docs))
    listed = {"apiVersion": "v1", "items": everything, "kind": "List", "metadata": {"resourceVersion": ""}}
    with open(out / "dump.json", "w") as fh:  # kubectl's layout: four-space indents, "key": value
        json.dump(listed, fh, indent=4, ensure_ascii=False)
        fh.write("\n")
    (out / "dump.yaml").write_text(_yaml_dump([listed], sort_keys=True))
    # The snapshot holds what `mesh-audit snapshot` keeps of the same cluster.
    from auditor.collect.cluster.lister import strip_bookkeeping
    from auditor.collect.collection import Collection
    from auditor.collect.snapshot.file import write_snapshot

    collection = Collection(objects=[strip_bookkeeping(dict(o)) for o in everything], context="bench",
                            server="https://127.0.0.1", server_version="v1.31.4", collected_at="2026-11-25T00:00:00Z")
    write_snapshot(collection, str(out / "snapshot.json"))
    return {"pods": sum(1 for o in cluster["observed"] if o["kind"] == "Pod"), "objects": len(everything)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--modes", default=None, help="comma-separated modes cycled over namespaces (ambient, sidecar, "
                                                      "plain); default: 40%% ambient, 40%% sidecar, 20%% outside the mesh")
    args = parser.parse_args()
    print(write(args.pods, args.out, args.seed, args.modes.split(",") if args.modes else None))


if __name__ == "__main__":
    main()
