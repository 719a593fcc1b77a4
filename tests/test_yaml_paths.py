"""The fast YAML path (yaml-rs) and the complete one (PyYAML) must load every manifest to
the same objects at the same lines, with Kubernetes' reading of YAML 1.1 scalars."""

from __future__ import annotations

import pytest
import yaml

from auditor.collect import files
from auditor.collect.yamldocs import documents as yaml_docs
from auditor.collect.files import LoadResult, _load_bytes
from conftest import FIXTURES

pytestmark = pytest.mark.skipif(yaml_docs._yaml_rs is None, reason="yaml-rs is not installed here")

TRICKY = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: tricky   # a comment
  namespace: shop
  annotations: {plain: "yes", octal-string: "0755"}
spec: {enabled: yes, mode: on, perms: 0755, plain: "yes", octal-string: "0755"}
data:
  when: 2024-01-02
  ratio: 1.5
  list: [a, b]
---
# a comment before the document
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
items:
- apiVersion: v1
  kind: Service
  metadata:
    name: a
    namespace: shop
  spec:
    ports:
    - port: 80
- apiVersion: v1
  kind: Service
  metadata: {name: b, namespace: shop}
kind: List
metadata:
  resourceVersion: ""
---
apiVersion: v1
kind: ConfigMap
metadata: {name: block, namespace: shop}
data:
  script: |
    ---
    - not a document separator: it is indented
"""


def load(data: bytes, fast: bool, monkeypatch) -> list[tuple]:
    if not fast:
        monkeypatch.setattr(yaml_docs, "_yaml_rs", None)
    result = LoadResult()
    _load_bytes(data, "x.yaml", result, as_json=False)
    monkeypatch.undo()
    return [(o.raw, o.line) for o in result.objects]


def yaml_files():
    """Every YAML fixture but broken rule files and Helm templates (not YAML until rendered)."""
    return sorted(p for p in FIXTURES.rglob("*.yaml") if p.parent.name not in ("broken-rules", "templates"))


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fast_and_complete_paths_agree_on_every_fixture(path, monkeypatch):
    data = path.read_bytes()
    try:
        complete = load(data, False, monkeypatch)
    except Exception as err:  # noqa: BLE001 - the same error must come from both paths
        with pytest.raises(type(err)):
            load(data, True, monkeypatch)
        return
    assert load(data, True, monkeypatch) == complete


def test_yaml_1_1_scalars_are_read_as_kubernetes_reads_them(monkeypatch):
    fast = load(TRICKY.encode(), True, monkeypatch)
    assert fast == load(TRICKY.encode(), False, monkeypatch)
    tricky = fast[0][0]["spec"]
    assert tricky == {"enabled": True, "mode": True, "perms": 493, "plain": "yes", "octal-string": "0755"}
    assert fast[0][0]["metadata"]["annotations"] == {"plain": "yes", "octal-string": "0755"}
    assert fast[0][0]["data"]["when"] == "2024-01-02"  # timestamps stay strings
    assert [line for _, line in fast] == [1, 14, 20, 28, 35]
    assert fast[-1][0]["data"]["script"].startswith("---\n- not a document separator")


def test_errors_come_with_the_right_line_through_the_fast_path(monkeypatch):
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: [}\n"
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(yaml_docs, "_yaml_rs", None)
        result = LoadResult()
        with pytest.raises(files.UsageError) as info:
            _load_bytes(text.encode(), "x.yaml", result, as_json=False)
        monkeypatch.undo()
        assert info.value.line == 7 and str(info.value).startswith("x.yaml:7: invalid YAML")


def test_parse_floor_helper_reads_all_documents():
    docs = yaml_docs.parse_yaml_documents("a: 1\n---\nb: 2\n")
    assert docs == [{"a": 1}, {"b": 2}]
    assert yaml.safe_load("a: 1") == {"a": 1}


def _listed(items: list[str]) -> bytes:
    return ("apiVersion: v1\nitems:\n" + "".join(items) + 'kind: List\nmetadata:\n  resourceVersion: ""\n').encode()


@pytest.mark.parametrize("where", [None, 0, 7])
def test_a_list_in_shares_checks_each_share_for_yaml_1_1_scalars(monkeypatch, mocker, where):
    """A kubectl -o yaml List is parsed item by item in shares, each share checking its own
    text for what yaml-rs would read otherwise; one such item anywhere sends the whole List
    down the complete path. Either way, the objects and lines are the complete path's."""
    from auditor.collect.yamldocs import lists

    items = [f"- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c{i}\n    namespace: shop\n  data:\n"
             f"    n: \"{i}\"\n" for i in range(8)]
    if where is not None:
        items[where] = items[where].replace('    n: "', "    flag: yes\n    n: \"")
    data = _listed(items)
    monkeypatch.setattr(lists, "PARALLEL_MIN_BYTES", 0)
    streamed = mocker.spy(files, "load_yaml_items")
    shared = mocker.spy(lists, "map_shares")
    result = LoadResult()
    _load_bytes(data, "x.yaml", result, as_json=False, jobs=2)
    assert streamed.spy_return is (where is None)
    assert len(shared.call_args.args[1]) == 2  # two shares, the second in a child
    fast = [(o.raw, o.line) for o in result.objects]
    assert fast == load(data, False, monkeypatch)
    assert len(fast) == 8 and fast[1][1] == (11 if where == 0 else 10)
    if where is not None:
        assert fast[where][0]["data"]["flag"] is True


def test_a_list_is_parsed_by_one_process_under_jobs_1(monkeypatch, mocker):
    from auditor.collect.yamldocs import lists

    monkeypatch.setattr(lists, "PARALLEL_MIN_BYTES", 0)
    shared = mocker.spy(lists, "map_shares")
    result = LoadResult()
    _load_bytes(_listed([f"- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: n{i}\n" for i in range(4)]),
                "x.yaml", result, as_json=False, jobs=1)
    assert [o.name for o in result.objects] == ["n0", "n1", "n2", "n3"]
    assert len(shared.call_args.args[1]) == 1
