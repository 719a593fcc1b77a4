"""A change judged against the cluster it lands in.

A pull request rarely holds the whole mesh: the namespace labels, waypoints and workloads
its policy depends on live in the cluster. `apply` lays the change's objects over a base
(a snapshot or the live cluster) the way `kubectl apply` would, removes what the change
deletes, and keeps the record of what changed; `compare` audits the base and the result
and keeps only what the change adds, naming the changed object behind each finding on an
object the change did not touch.
"""

from auditor.change.apply import Applied, Changed, apply_change, parse_deletion
from auditor.change.compare import audit_change

__all__ = ["Applied", "Changed", "apply_change", "audit_change", "parse_deletion"]
