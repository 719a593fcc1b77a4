"""The cluster as `serve` audits it: what the last full collection read, kept current by the
watches' events, so a change costs an audit, not another read of the whole cluster.

Each event's object is prepared as the collector prepares a listed item (kind restored,
bookkeeping stripped, running Pods and ReplicaSets projected; CRDs and Nodes kept as the
projections the collector keeps; only Istio's injector webhooks kept). Objects the
collector reads by name (Istio's ConfigMaps) are watched by name too.
"""

from __future__ import annotations

import threading

from auditor.collect.cluster.collector import project_crd, project_node
from auditor.collect.cluster.lister import prepare_item
from auditor.collect.cluster.resources import CRDS, NODES, WEBHOOKS
from auditor.model.components import is_injector_webhook
from auditor.model.snapshot import K8sObject, Snapshot


class Store:
    def __init__(self, live):
        self.live = live  # the Collection: what was (not) collected, list versions and types
        self.lock = threading.Lock()
        # Wrapped once: a round indexes them again, it does not wrap 50,000 objects again.
        # Handed over: were the record to keep the listed objects, each one a watch event
        # replaces would stay alive until the next relist (serve's memory grew by as much).
        self.objects = {obj.key: obj for obj in live.hand_over()}
        self.events = 0  # applied since the collection

    def apply(self, rtype, event_type: str, obj: dict) -> bool:
        """Fold one watch event in; whether the audit's input changed."""
        if rtype.kind == WEBHOOKS.kind:
            item = prepare_item(obj, rtype)
            if not is_injector_webhook(item):
                event_type = "DELETED"  # not (or no longer) one the audit reads
        elif rtype.kind == CRDS.kind:
            item = project_crd(obj)
        elif rtype.kind == NODES.kind:
            item = project_node(obj)
        else:
            item = prepare_item(obj, rtype, projected=True)
        obj = K8sObject(item)
        with self.lock:
            self.events += 1
            if event_type == "DELETED":
                return self.objects.pop(obj.key, None) is not None
            self.objects[obj.key] = obj
            return True

    def current(self) -> tuple[dict, dict]:
        """(key -> object, a copy), and the record of the collection they started from."""
        with self.lock:
            objects = dict(self.objects)
        return objects, {"source": "cluster", **self.live.describe()}

    def snapshot(self) -> Snapshot:
        objects, collection = self.current()
        return Snapshot(objects.values(), collection=collection)
