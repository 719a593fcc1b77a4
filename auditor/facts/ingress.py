"""Ingress gateways and waypoints: whether ingress traffic for a Service passes its waypoint.

Istio ingress gateways send a Service's traffic straight to its endpoints: before 1.24
always; from 1.24 on unless the Service carries `istio.io/ingress-use-waypoint: "true"`,
or (1.25+) its namespace does (evidence C.3, rule 7). A label present on the Service
decides even when its value is not read as true: the namespace is consulted only when the
Service has no such label.

How the value is read moved with the code that reads it:
- 1.24: the endpoint builder compares the Service's label with exactly `true`;
- 1.25 to 1.29: the ambient index, `strings.EqualFold(value, "true")`, so `True` and `TRUE`
  opt in as well (istio/istio#54765 brought the same to ServiceEntries);
- 1.30 on: `ingressUseWaypointFromLabels` (istio/istio#59147, merged February 2026) reads it
  with Go's strconv.ParseBool, so `1` and `t` opt in too, and a value ParseBool refuses reads
  as false. An unknown version is read as the newest.
"""

from __future__ import annotations

from typing import Callable

from auditor.core.istio import INGRESS_USE_WAYPOINT
from auditor.facts.context import Context
from auditor.facts.labels import parse_bool
from auditor.model.snapshot import K8sObject
from auditor.core.versions import V1_24, Version

V1_25 = Version(1, 25)
V1_30 = Version(1, 30)


def _reading(version: Version | None) -> tuple[Callable[[str], bool], str]:
    """How Istio `version` reads an ingress-use-waypoint value: (whether it opts in, in words)."""
    if version is not None and version < V1_25:
        return (lambda value: value == "true"), f"Istio {version} opts in only with exactly \"true\""
    if version is not None and version < V1_30:
        return (lambda value: value.lower() == "true"), f"Istio {version} opts in only with \"true\" in any case"
    return (lambda value: parse_bool(value) is True), "Istio reads it with Go's ParseBool"


def opts_in(value: str, version: Version | None) -> bool:
    """Whether Istio `version` reads an ingress-use-waypoint value as true."""
    return _reading(version)[0](value)


def _quoted(value: str) -> str:
    return '"' + value + '"'


def ingress_waypoint_choice(ctx: Context, obj: K8sObject) -> tuple[bool, str]:
    """Whether ingress gateways send this Service's traffic through its waypoint, and why
    (or why not), in words that can follow "because"."""
    version = ctx.installation.istio_version
    if not ctx.version_at_least(V1_24):
        return False, f"ingress gateways never use waypoints before Istio 1.24 (this is {version})"
    own = obj.labels.get(INGRESS_USE_WAYPOINT)
    if own is not None:
        if opts_in(own, version):
            return True, f"the Service's {INGRESS_USE_WAYPOINT} is {_quoted(own)}"
        return False, f"the Service's {INGRESS_USE_WAYPOINT} is {_quoted(own)}, which reads as false ({_reading(version)[1]})"
    ns_value = ctx.ns_labels(obj.namespace).get(INGRESS_USE_WAYPOINT)
    if ns_value is None:
        return False, f"{INGRESS_USE_WAYPOINT} is set on neither the Service nor namespace {obj.namespace}"
    if not ctx.version_at_least(V1_25):
        return False, (f"only namespace {obj.namespace} sets {INGRESS_USE_WAYPOINT}, which Istio reads "
                       f"from namespaces from 1.25 on (this is {version})")
    if opts_in(ns_value, version):
        return True, f"namespace {obj.namespace} sets {INGRESS_USE_WAYPOINT} to {_quoted(ns_value)}"
    return False, (f"namespace {obj.namespace} sets {INGRESS_USE_WAYPOINT} to {_quoted(ns_value)}, "
                   f"which reads as false ({_reading(version)[1]})")


def ingress_use_waypoint(ctx: Context, obj: K8sObject) -> bool:
    """Whether ingress gateways send traffic for this Service through its waypoint."""
    return ingress_waypoint_choice(ctx, obj)[0]
