"""Writing the report objects into the cluster, and removing the ones no longer true.

The reports mesh-audit owns are those labelled `app.kubernetes.io/managed-by: mesh-audit`.
Each audit: the reports it builds are created, or replaced when their content changed
(with the resourceVersion read, so a concurrent writer is noticed: a 409 Conflict reads
the report again and retries, up to `ATTEMPTS` times); owned reports of namespaces whose
findings are gone are deleted. Nothing else is ever written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from auditor.reporters.policyreport import FLAVOURS, MANAGED_BY

ATTEMPTS = 5
SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


@dataclass
class Outcome:
    created: int = 0
    replaced: int = 0
    deleted: int = 0
    unchanged: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)


class Publisher:
    def __init__(self, http, flavour: str):
        self.http = http
        self.flavour = flavour  # policyreport | openreports
        self.kind = FLAVOURS[flavour]

    def publish(self, docs: list[dict]) -> Outcome:
        from auditor.collect.cluster.http import Unavailable

        outcome = Outcome()
        try:
            owned = self._owned()
        except (Unavailable, _Refused) as err:
            outcome.errors.append(f"cannot list {self.kind.plural}.{self.kind.group}: {err}")
            return outcome
        wanted = {(d["kind"], d["metadata"].get("namespace")) for d in docs}
        for doc in docs:
            try:
                self._write(doc, owned.get((doc["kind"], doc["metadata"].get("namespace"))), outcome)
            except (Unavailable, _Refused) as err:
                outcome.errors.append(f"{_where(doc)}: {err}")
        for key, current in sorted(owned.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            if key not in wanted:
                try:
                    self._delete(current, outcome)
                except (Unavailable, _Refused) as err:
                    outcome.errors.append(f"{_where(current)}: {err}")
        return outcome

    def _path(self, kind: str, namespace: str | None, name: str | None = None) -> str:
        base = f"/apis/{self.kind.api_version}"
        plural = self.kind.plural if kind == self.kind.kind else self.kind.cluster_plural
        base += f"/namespaces/{namespace}/{plural}" if namespace else f"/{plural}"
        return base + (f"/{name}" if name else "")

    def _owned(self) -> dict:
        """(kind, namespace) -> the report mesh-audit owns there."""
        out = {}
        for kind in (self.kind.kind, self.kind.cluster_kind):
            resp = self.http.get(self._path(kind, None), {"labelSelector": SELECTOR})
            if resp.status != 200:
                raise _Refused(resp)
            for item in resp.json().get("items") or []:
                meta = item.get("metadata") or {}
                if meta.get("name") == "mesh-audit":
                    out[(kind, meta.get("namespace"))] = {**item, "kind": kind, "apiVersion": self.kind.api_version}
        return out

    def _write(self, doc: dict, current: dict | None, outcome: Outcome) -> None:
        meta = doc["metadata"]
        for _ in range(ATTEMPTS):
            if current is None:
                resp = self.http.send("POST", self._path(doc["kind"], meta.get("namespace")), doc)
                if resp.status == 201 or resp.status == 200:
                    outcome.created += 1
                    return
                if resp.status != 409:
                    raise _Refused(resp)
            elif _same(current, doc):
                outcome.unchanged += 1
                return
            else:
                body = {**doc, "metadata": {**meta, "resourceVersion": current["metadata"].get("resourceVersion")}}
                resp = self.http.send("PUT", self._path(doc["kind"], meta.get("namespace"), meta["name"]), body)
                if resp.status == 200:
                    outcome.replaced += 1
                    return
                if resp.status not in (409, 404):
                    raise _Refused(resp)
            outcome.conflicts += 1
            current = self._read(doc)
        raise _Refused(None, f"still conflicting after {ATTEMPTS} attempts")

    def _read(self, doc: dict) -> dict | None:
        meta = doc["metadata"]
        resp = self.http.get(self._path(doc["kind"], meta.get("namespace"), meta["name"]))
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise _Refused(resp)
        return resp.json()

    def _delete(self, current: dict, outcome: Outcome) -> None:
        meta = current.get("metadata") or {}
        resp = self.http.send("DELETE", self._path(current["kind"], meta.get("namespace"), meta.get("name")))
        if resp.status not in (200, 202, 404):
            raise _Refused(resp)
        outcome.deleted += 1


def _same(current: dict, doc: dict) -> bool:
    """Whether a stored report already says what `doc` says (labels, summary, results)."""
    keep = ("summary", "results", "source")
    labels = (current.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in doc["metadata"]["labels"].items()) and \
        orjson.dumps({k: current.get(k) for k in keep}, option=orjson.OPT_SORT_KEYS) == \
        orjson.dumps({k: doc.get(k) for k in keep}, option=orjson.OPT_SORT_KEYS)


def _where(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')} {meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta.get('name')}"


class _Refused(Exception):
    def __init__(self, resp, text: str | None = None):
        from auditor.collect.cluster.http import status_reason

        super().__init__(text or status_reason(resp))
