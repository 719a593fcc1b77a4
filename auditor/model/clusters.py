"""Several clusters audited as one mesh: each cluster's Snapshot, by name.

Each cluster keeps its own snapshot, so everything that holds within one cluster (which
pods are ambient, which waypoint serves what) is answered exactly as for a single-cluster
audit; what spans clusters is answered by facts.topology. The record of how the objects
were read lists every cluster's own record; a cluster that could not be read at all is a
gap like any other, and the others are still audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain
from typing import Iterator

from auditor.core.coverage import Gap
from auditor.core.errors import UsageError
from auditor.model.snapshot import K8sObject, Snapshot

# The gap of a cluster that could not be read at all.
EVERYTHING = "everything"
# A cluster name is a path segment of SARIF pseudo-paths and of `-f NAME=PATH`.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_name(name: str, what: str = "cluster name") -> str:
    if not NAME.match(name):
        raise UsageError(f"{what} {name!r}: use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit")
    return name


@dataclass(frozen=True)
class ClusterSource:
    """A live cluster to read: kubeconfig (default $KUBECONFIG, then ~/.kube/config, then
    the pod's service account), context, namespaces (default all) and a time limit."""

    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    timeout: float = 300.0
    progress: bool = False  # a progress line on stderr while collecting


class Clusters:
    """The snapshots of an audit of several clusters, in the order they were given."""

    def __init__(self, members: dict[str, Snapshot]):
        self.members = dict(members)

    def __iter__(self) -> Iterator[K8sObject]:
        return chain.from_iterable(self.members.values())

    def __len__(self) -> int:
        return sum(len(s) for s in self.members.values())

    def items(self):
        return self.members.items()

    @property
    def errors(self) -> list:
        return [e for s in self.members.values() for e in s.errors]

    @property
    def warnings(self) -> list:
        return [w for s in self.members.values() for w in s.warnings]

    @property
    def collection(self) -> dict:
        """{"source": "clusters", "clusters": [each cluster's record, with its name],
        "not_collected": [every gap, with its cluster]}."""
        records, gaps = [], []
        for name, snapshot in self.members.items():
            records.append({"name": name, **snapshot.collection})
            gaps += [{**gap, "cluster": name} for gap in snapshot.collection.get("not_collected") or ()]
        return {"source": "clusters", "clusters": records, "not_collected": gaps}

    def reachable(self) -> dict[str, Snapshot]:
        """The clusters that were read (an unreachable one has only its gap)."""
        return {name: s for name, s in self.members.items()
                if not any(g.get("resource") == EVERYTHING for g in s.collection.get("not_collected") or ())}


def unreachable(context: str | None, reason: str) -> Snapshot:
    """The snapshot of a cluster that could not be read at all: no objects, one gap."""
    return Snapshot(collection={"source": "cluster", "context": context, "counts": {},
                                "not_collected": [Gap(EVERYTHING, reason).to_dict()]})
