"""Facts: Istio's answers about a snapshot, as plain data for rules.

- `context.Context`: the snapshot indexed for Istio's questions, and `mesh`, the
  cluster-wide facts;
- Istio's questions, one module each: `mode` (sidecar injection, ambient enrollment),
  `waypoint` (binding), `attachment` (which proxy enforces a policy), `routes`,
  `netpol`, `egress`, `mesh` (the installation: version, mesh config, injector, istio-cni); with their helpers `workloads`,
  `services`, `labels` and `authz`;
- `subjects`: what rules see as `facts` for one object, a module per kind.
"""
