"""What a collection did not read, in one shape for every input and output.

A gap names a resource type (as RBAC and kubectl name it: `pods`, `virtualservices.
networking.istio.io`), optionally a namespace and object name, and why it was not read.
Every report format and the snapshot header carry gaps, so a partial view of a cluster
is never mistaken for a clean one.
"""

from __future__ import annotations

from dataclasses import dataclass


def describe_gap(gap: dict) -> str:
    """`pods in namespace shop: forbidden (403): ...`, one line for any output."""
    what = gap["resource"] + (f"/{gap['name']}" if gap.get("name") else "")
    where = f" in namespace {gap['namespace']}" if gap.get("namespace") else ""
    cluster = f"cluster {gap['cluster']}: " if gap.get("cluster") else ""
    return f"{cluster}{what}{where}: {gap['reason']}"


@dataclass
class Gap:
    """Something that was not collected, and why."""

    resource: str
    reason: str
    namespace: str | None = None
    name: str | None = None
    status: int | None = None

    def __str__(self) -> str:
        return describe_gap(self.to_dict())

    def to_dict(self) -> dict:
        return {"resource": self.resource, "namespace": self.namespace, "name": self.name,
                "status": self.status, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict) -> "Gap":
        return cls(str(d["resource"]), str(d["reason"]), d.get("namespace"), d.get("name"), d.get("status"))
