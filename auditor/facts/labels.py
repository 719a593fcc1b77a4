"""Kubernetes label selectors, and an index that answers them without scanning every item."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from auditor.model.snapshot import str_map

# Set by the API server on every Namespace (Kubernetes 1.21+), whatever a manifest says, so
# a namespace selector can name one namespace by it (Istio's cross-namespace waypoint
# example does): manifests never write it, snapshots may not carry it.
NAMESPACE_NAME = "kubernetes.io/metadata.name"


def namespace_labels_as_served(namespace: str, labels: dict[str, str]) -> dict[str, str]:
    """A namespace's labels as a namespace selector sees them on the API server."""
    return {**labels, NAMESPACE_NAME: namespace}


def parse_bool(value: str | None) -> bool | None:
    """Go's strconv.ParseBool, which Istio uses for many boolean labels and annotations
    (`istio.io/dry-run`, and `istio.io/ingress-use-waypoint` from 1.30): None when absent
    or refused."""
    if value is None:
        return None
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _expr_matches(expr, labels: dict[str, str]) -> bool:
    if not isinstance(expr, dict):
        return False
    key = str(expr.get("key", ""))
    op = expr.get("operator")
    values = expr.get("values") or []
    values = [str(v) for v in values] if isinstance(values, list) else []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False  # unknown operators match nothing, as the API server would reject them


def selector_matches(selector, labels: dict[str, str]) -> bool:
    """A `LabelSelector` (matchLabels + matchExpressions). An empty selector matches all."""
    if not isinstance(selector, dict):
        return True
    for key, value in str_map(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    exprs = selector.get("matchExpressions") or []
    if not isinstance(exprs, list):
        return False
    return all(_expr_matches(e, labels) for e in exprs)


class LabelIndex:
    """Integer ids indexed by namespace and by (key, value), per namespace and cluster-wide.

    `select` intersects the postings of each required pair, starting from the smallest,
    so a policy selector costs what it matches, not what the cluster holds.
    """

    def __init__(self) -> None:
        self._labels: dict[int, dict[str, str]] = {}
        self._by_ns: dict[str, list[int]] = defaultdict(list)
        self._by_ns_kv: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        self._by_kv: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._all: list[int] = []

    def add(self, item_id: int, namespace: str, labels: dict[str, str]) -> None:
        self._labels[item_id] = labels
        self._all.append(item_id)
        self._by_ns[namespace].append(item_id)
        for k, v in labels.items():
            self._by_ns_kv[(namespace, k, v)].append(item_id)
            self._by_kv[(k, v)].append(item_id)

    def in_namespace(self, namespace: str) -> list[int]:
        return list(self._by_ns.get(namespace, ()))

    def all(self) -> list[int]:
        return list(self._all)

    def select(self, namespace: str | None, match_labels, expressions: Iterable | None = None) -> list[int]:
        """Ids in `namespace` (all namespaces when None) whose labels satisfy the selector."""
        required = str_map(match_labels)
        if required:
            if namespace is None:
                postings = [self._by_kv.get(kv, ()) for kv in required.items()]
            else:
                postings = [self._by_ns_kv.get((namespace, k, v), ()) for k, v in required.items()]
            postings.sort(key=len)
            candidates = set(postings[0])
            for p in postings[1:]:
                candidates.intersection_update(p)
                if not candidates:
                    break
            ids = sorted(candidates)
        else:
            ids = self.all() if namespace is None else self.in_namespace(namespace)
        exprs = list(expressions or [])
        if exprs:
            ids = [i for i in ids if all(_expr_matches(e, self._labels[i]) for e in exprs)]
        return ids
