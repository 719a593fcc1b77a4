"""Ingress gateways and waypoints: whether ingress traffic for a Service passes its waypoint.

Istio ingress gateways send a Service's traffic straight to its endpoints: before 1.24
always; from 1.24 on unless the Service carries `istio.io/ingress-use-waypoint: "true"`,
or (1.25+) its namespace does (evidence C.3, rule 7). The value is read as Go's
strconv.ParseBool reads it.
"""

from __future__ import annotations

from auditor.facts.context import Context
from auditor.snapshot import K8sObject
from auditor.versions import Version

INGRESS_USE_WAYPOINT = "istio.io/ingress-use-waypoint"
V1_24 = Version(1, 24)
V1_25 = Version(1, 25)


def parse_bool(value: str | None) -> bool | None:
    """Go's strconv.ParseBool, which Istio uses for boolean labels."""
    if value is None:
        return None
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def ingress_use_waypoint(ctx: Context, obj: K8sObject) -> bool:
    """The Service's label (1.24+), else (1.25+) its namespace's: whether ingress gateways
    send traffic for this Service through its waypoint. Before 1.24 they never do."""
    if not ctx.version_at_least(V1_24):
        return False
    own = parse_bool(obj.labels.get(INGRESS_USE_WAYPOINT))
    if own is not None:
        return own
    if ctx.version_at_least(V1_25):
        return bool(parse_bool(ctx.ns_labels(obj.namespace).get(INGRESS_USE_WAYPOINT)))
    return False
