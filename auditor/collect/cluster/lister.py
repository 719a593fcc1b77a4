"""Reading resource types page by page: LIST with `limit` and `continue`, GET by name, and
discovery of the Istio and Gateway API kinds the server serves. Every failure ends as a
gap or a not-installed note, never as an exception that ends the scan."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import orjson

from auditor.collect.cluster.http import (
    Deadline,
    Http,
    Response,
    StatusError,
    Unavailable,
    status_reason,
)
from auditor.collect.cluster.pages import article, continue_token, list_key, list_page, list_version, page_query, projected_page
from auditor.collect.cluster.progress import Progress
from auditor.collect.cluster.resources import (
    CRDS,
    ISTIO_GROUPS,
    JSON,
    WEBHOOKS,
    WORKLOAD_TYPES,
    ResourceType,
)
from auditor.collect.cluster.spool import Spool
from auditor.collect.decode import Projected, ProjectingReader
from auditor.collect.collection import Collection
from auditor.core.coverage import Gap
from auditor.core.errors import json_problem
from auditor.model.snapshot import Projector, as_dict, as_list, project

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NOT_FOUND: dict = {}  # a discovery document that answered 404 (told apart by identity)


def prepare_item(item: dict, rtype: ResourceType, projected: bool = False) -> dict:
    """Restore kind/apiVersion (list items of built-in kinds lack them), then strip_bookkeeping;
    running Pods and ReplicaSets are projected when the objects feed a scan directly."""
    item["apiVersion"] = rtype.api_version
    item["kind"] = rtype.kind
    if projected and rtype.kind in ("Pod", "ReplicaSet"):
        return project(item)
    return strip_bookkeeping(item)


def strip_bookkeeping(item: dict) -> dict:
    """Drop what the audit never reads and that can dwarf the object: managedFields and
    the last-applied-configuration annotation."""
    meta = item.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    return item


class Lister:
    def __init__(self, http: Http, progress: Progress | None, projected: bool = False,
                 ahead: ThreadPoolExecutor | None = None, spool: Spool | None = None, result: Collection | None = None):
        self.projected = projected
        self.spool = spool
        # With a spool, what _config_map_names needs of the spooled Deployments and DaemonSets.
        self.stubs: list[dict] = []
        self.http = http
        self.ahead = ahead  # requests the next page of a list while this one is parsed
        self.progress = progress
        self.result = result if result is not None else Collection()  # what is read goes here
        # API groups discovery does not serve: their kinds are not installed, not failed.
        self.absent_groups: set[str] = set()
        self._lock = threading.Lock()

    def gap(self, rtype_key: str, reason: str, namespace=None, name=None, status=None) -> None:
        with self._lock:
            self.result.not_collected.append(Gap(rtype_key, reason, namespace, name, status))

    def missing(self, what: str) -> None:
        with self._lock:
            if what not in self.result.not_installed:
                self.result.not_installed.append(what)

    def list(self, rtype: ResourceType, namespace: str | None = None, accept: str = JSON, spooled: bool = False) -> list[dict]:
        """All pages of one LIST; [] with a gap when it fails, or a not-installed note when
        discovery does not serve its group. `spooled` (with a spool) sends the pages to the
        spool and returns []."""
        if rtype.group in self.absent_groups:
            self.missing(rtype.key)
            return []
        spool = self.spool if spooled else None
        try:
            items, count = self._pages(rtype, namespace, accept, spool)
        except (Deadline, Unavailable, StatusError) as err:
            if spool is not None:  # a list that failed part way is not collected: none of it is kept
                spool.restart(list_key(rtype, namespace))
            if isinstance(err, Deadline):
                self.gap(rtype.key, "timed out (--timeout)", namespace)
            elif isinstance(err, Unavailable):
                self.gap(rtype.key, str(err), namespace, status=err.status)
            else:  # a 404 too: discovery serves this kind, so the failed list is a gap, never "not installed"
                self.gap(rtype.key, status_reason(err.response), namespace, status=err.response.status)
            return []
        self._count(rtype.key, count)
        return items

    def _count(self, key: str, n: int) -> None:
        with self._lock:
            self.result.counts[key] = self.result.counts.get(key, 0) + n

    def _fetch(self, what: str, path: str, namespace=None, name=None, prefix: str = "") -> Response | None:
        """One GET; a timeout or exhausted retries become a gap and None."""
        try:
            return self.http.get(path)
        except Deadline:
            self.gap(what, "timed out (--timeout)", namespace, name)
        except Unavailable as err:
            self.gap(what, prefix + str(err), namespace, name, err.status)
        return None

    def _pages(self, rtype: ResourceType, namespace: str | None, accept: str,
               spool: Spool | None = None) -> tuple[list[dict], int]:
        """Every page of a LIST. The next page is requested as soon as this one's continue
        token is seen (ListMeta comes before the items), so the server works on it while
        this page is parsed and prepared: a 50,000-pod list is a hundred pages in a row."""
        items: list[dict] = []
        count = 0
        key = list_key(rtype, namespace)
        token = None
        restarts = 0
        path = rtype.path(namespace)
        ahead = None  # (token, future) of the page requested early
        seen: set[str] = set()  # a server that hands out a token twice would list forever
        read = ProjectingReader(Projector())
        signed: dict = {}  # running pods' replica signatures, kept once the list is whole
        while True:
            if ahead is not None and ahead[0] == token:
                resp = ahead[1].result()
            else:
                resp = self.http.get(path, page_query(token), accept)
            ahead = None
            if resp.status == 410 and token and restarts < 3:
                # The continue token expired (etcd compacted): start this list again.
                items, count, token, restarts, signed = [], 0, None, restarts + 1, {}
                read = ProjectingReader(Projector())
                seen.clear()  # a new list hands out its tokens again
                if spool is not None:
                    spool.restart(key)
                continue
            if resp.status != 200:
                raise StatusError(resp)
            if token is None:
                self._note_version(path, rtype, resp)
            early = continue_token(resp.body) if self.ahead is not None else None
            if early:
                ahead = (early, self.ahead.submit(self.http.get, path, page_query(early), accept))
            if self.projected and rtype.kind in ("Pod", "ReplicaSet"):
                page, token = projected_page(resp, rtype, read)
            else:
                page, token = list_page(resp)
            if token in seen:
                raise Unavailable("the API server sent the same continue token twice; the list would never end")
            if token:
                seen.add(token)
            prepared = self._prepared(page, rtype, signed if spool is None else None)
            count += len(prepared)
            if spool is None:
                items.extend(prepared)
            else:
                spool.add(key, prepared)
                if rtype.kind in ("Deployment", "DaemonSet"):
                    self._keep_stubs(prepared)
            if self.progress is not None:
                self.progress.add(rtype.key, len(page))
            if not token:
                self._keep_signatures(signed)
                return items, count

    def _note_version(self, path: str, rtype: ResourceType, resp: Response) -> None:
        """A list's pages share one resourceVersion: where a watch of it starts (serve)."""
        version = list_version(resp.body)
        if version:
            with self._lock:
                self.result.list_versions[path] = version
                self.result.list_types[path] = rtype

    def _prepared(self, page: list, rtype: ResourceType, signed: dict | None) -> list[dict]:
        """A page's items as the collection keeps them (Unavailable for a malformed one);
        running pods' replica signatures added to `signed` where given (the objects feed
        an audit)."""
        odd = next((i for i in page if not isinstance(i, (dict, Projected))), None)
        if odd is not None or any(isinstance(i, dict) and not isinstance(i.get("metadata"), dict) for i in page):
            what = article(type(odd).__name__) if odd is not None else "an object without metadata"
            raise Unavailable(f"the API server sent a malformed list (an item is {what})")
        prepared = [i if isinstance(i, Projected) else prepare_item(i, rtype, self.projected) for i in page]
        if signed is not None and rtype.kind == "Pod":
            signed.update(((meta.get("namespace"), meta.get("name")), i.signature) for i in prepared
                          if isinstance(i, Projected) and i.signature is not None
                          and isinstance(meta := i.raw["metadata"], dict))
        return [i.raw if isinstance(i, Projected) else i for i in prepared]

    def _keep_signatures(self, signed: dict) -> None:
        """A whole list's signatures into the collection (a list started again after its
        continue token expired keeps only the last run's: a pod read again by the general
        path must not take the signature of the pod it replaced)."""
        if signed:
            with self._lock:
                self.result.signatures.update(signed)

    def _keep_stubs(self, objects: list[dict]) -> None:
        stubs = [{"kind": o.get("kind"), "metadata": {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}}
                 for o in objects if isinstance(meta := o.get("metadata"), dict)]
        with self._lock:
            self.stubs.extend(stubs)


    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict | None:
        """One object by name; None when it does not exist (or could not be read: a gap)."""
        resp = self._fetch(rtype.key, rtype.path(namespace, name), namespace, name)
        if resp is not None and resp.status == 404:
            self._note_named(rtype, namespace, name, None)
        if resp is None or resp.status == 404:
            return None
        if resp.status != 200:
            self.gap(rtype.key, status_reason(resp), namespace, name, resp.status)
            return None
        try:
            obj = resp.json()
        except orjson.JSONDecodeError as err:
            self.gap(rtype.key, f"the API server sent an object that is not JSON ({json_problem(err)})", namespace, name)
            return None
        if not isinstance(obj, dict):
            self.gap(rtype.key, f"the API server sent a {type(obj).__name__}, not an object", namespace, name)
            return None
        self._count(rtype.key, 1)
        self._note_named(rtype, namespace, name, as_dict(obj.get("metadata")).get("resourceVersion"))
        return prepare_item(obj, rtype)

    def _note_named(self, rtype: ResourceType, namespace: str | None, name: str, version) -> None:
        """Where a watch of one object read by name starts (serve); None: it was absent."""
        with self._lock:
            self.result.named_versions[(rtype.path(namespace), name)] = (str(version) if version else None, rtype)

    def discover(self, pool: ThreadPoolExecutor) -> list[ResourceType]:
        """Every served kind of the Istio and Gateway API groups, each at the most preferred
        version that serves it (EnvoyFilter, for one, exists only as v1alpha3)."""
        doc = self._discovery_get("/apis")
        if doc is NOT_FOUND:
            self.gap("/apis", "discovery failed: not found (404)", status=404)
        if doc is None or doc is NOT_FOUND:
            return []
        groups = {g.get("name"): g for g in as_list(doc.get("groups")) if isinstance(g, dict)}
        for builtin in (WEBHOOKS, CRDS, *WORKLOAD_TYPES):
            if builtin.group and builtin.group not in groups:
                self.missing(builtin.group)
                self.absent_groups.add(builtin.group)
        plan = []
        for name in ISTIO_GROUPS:
            group = groups.get(name)
            if group is None:
                self.missing(name)
                continue
            preferred = as_dict(group.get("preferredVersion")).get("version")
            versions = [v.get("version") for v in as_list(group.get("versions")) if isinstance(v, dict)]
            ordered = ([preferred] if preferred in versions else []) + [v for v in versions if v != preferred]
            plan.extend((name, v) for v in ordered)
        pages = list(pool.map(lambda gv: self._discovery_get(f"/apis/{gv[0]}/{gv[1]}"), plan))
        found: dict[tuple[str, str], ResourceType] = {}
        for (group, version), page in zip(plan, pages):
            for r in as_list(as_dict(page).get("resources")):
                if not isinstance(r, dict):
                    continue
                name = str(r.get("name", ""))
                if "/" in name or "list" not in as_list(r.get("verbs")):
                    continue
                kind = str(r.get("kind"))
                found.setdefault((group, kind), ResourceType(group, version, name, kind, bool(r.get("namespaced"))))
        self._unserved_groups(plan, pages)
        return list(found.values())

    def _unserved_groups(self, plan: list[tuple[str, str]], pages: list) -> None:
        """A group /apis lists whose every version then answers 404: what it serves is
        unknown, which is a gap (the versions that failed some other way are gaps already)."""
        failed: dict[str, list] = {}
        for (group, version), page in zip(plan, pages):
            failed.setdefault(group, []).append(page)
        for group, answers in sorted(failed.items()):
            if all(a is NOT_FOUND for a in answers):
                self.gap(f"/apis/{group}", "discovery failed: /apis lists the group, but every version of it "
                                           "answers not found (404)", status=404)

    def _discovery_get(self, path: str) -> dict | None:
        resp = self._fetch(path, path, prefix="discovery failed: ")
        if resp is None:
            return None
        if resp.status == 404:
            return NOT_FOUND
        if resp.status != 200:
            self.gap(path, f"discovery failed: {status_reason(resp)}", status=resp.status)
            return None
        try:
            doc = resp.json()
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            self.gap(path, "discovery failed: the API server sent a document that is not a JSON object")
            return None
        return doc
