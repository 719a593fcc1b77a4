"""`--source-map DIR`: point findings on live objects at the manifests they came from.

A GitOps checkout holds the manifests a cluster was built from. Objects are matched by
API group, kind, namespace and name; a manifest that sets no namespace (kustomize or
helm fill it in) matches when it is the only one of that group, kind and name. Findings
on live objects move there whatever the input (a cluster, a snapshot, a dump file or
stdin); SARIF paths are relative to the repository root.
"""

from __future__ import annotations

from dataclasses import replace

from auditor.collect.files import load_paths
from auditor.core.errors import UsageError
from auditor.model.report import Finding


class SourceMap:
    def __init__(self, directory: str):
        loaded = load_paths([directory])
        self.warnings: list[UsageError] = loaded.errors + loaded.warnings
        snapshot = loaded.snapshot()
        self.exact: dict[tuple, tuple[str, int]] = {}
        unplaced: dict[tuple, list[tuple[str, int]]] = {}
        for obj in snapshot:
            location = snapshot.location(obj)
            if location is None:
                continue
            group = obj.api_version.rpartition("/")[0]
            self.exact[(group, obj.kind, obj.namespace, obj.name)] = location
            if not obj.metadata.get("namespace"):
                unplaced.setdefault((group, obj.kind, obj.name), []).append(location)
        self.unplaced = {k: v[0] for k, v in unplaced.items() if len(v) == 1}

    def locate(self, group: str, kind: str, namespace: str | None, name: str) -> tuple[str, int] | None:
        return self.exact.get((group, kind, namespace, name)) or self.unplaced.get((group, kind, name))

    def apply(self, findings: list[Finding]) -> list[Finding]:
        """The findings, each on a live object (read from a cluster, a snapshot or a dump,
        by file or stdin) pointed at its manifest's file and line where this checkout has it."""
        return [self._mapped(f) for f in findings]

    def _mapped(self, f: Finding) -> Finding:
        if not f.observed and f.location is not None and not f.location[0].startswith("<"):
            return f  # a manifest already: it is its own source
        location = self.locate(f.object.group, f.object.kind, f.object.namespace, f.object.name)
        return f if location is None else replace(f, location=location)
