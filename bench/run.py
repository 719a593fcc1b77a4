"""The benchmark: mesh-audit against the floor of its own inputs, on generated clusters.

    python bench/run.py                       # 10k and 50k pods (generated on first use)
    python bench/run.py --sizes 1k,10k,50k --update-docs
    python bench/run.py --plan --sizes 10k,50k --update-docs   # mesh-audit plan against scan
    python bench/run.py --clusters --sizes 10k --update-docs   # three clusters at once against one
    python bench/run.py --change --sizes 10k,50k --update-docs # a pull request judged against the snapshot

Each measurement is a separate process, timed wall-clock (the median of three runs; a
floor and what is measured against it run alternately), with its peak RSS. Floors are what no implementation can avoid: parsing each snapshot line
with orjson and dropping it (the garbage collector off), reading a JSON dump and parsing it
with orjson, paginated raw GETs of the same resource types plus parsing, and parsing the
manifests (and a kubectl -o yaml dump) with the YAML parser mesh-audit ships. Targets are checked and
printed; --update-docs rewrites the results section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
sys.path.insert(0, str(ROOT / "tests"))  # the API test server
sys.path.insert(0, str(ROOT / "bench"))
PY = sys.executable
TARGETS = {
    "snapshot_ratio": 1.5,  # scan --snapshot vs parse floor, at the largest size
    "live_ratio": 1.5,  # live collection vs raw GET floor, at the largest size
    "rss_mb": 600,  # peak RSS of scan --snapshot, at the largest size
    "growth": 5.5,  # scan --snapshot time, largest size / 10k
    "yaml_ratio": 1.5,  # manifest scan vs YAML parse floor, at 10k
    "json_dump_ratio": 1.5,  # scan of a kubectl -o json dump vs read + orjson, at the largest size
    "json_dump_rss_mb": 800,  # its peak RSS
    "yaml_dump_ratio": 1.5,  # scan of a kubectl -o yaml dump vs the YAML parser's floor, at 10k
    # and its peak RSS at most twice the file plus 200 MB
    "plan_ratio": 3.0,  # plan --snapshot vs scan --snapshot, at the largest size (--plan)
    "clusters_ratio": 1.5,  # loading three clusters at once vs one of them (--clusters)
    "change_ratio": 1.5,  # scan --against SNAPSHOT CHANGE --changes-only vs scan --snapshot, at the largest size (--change)
}
# The mesh in migration the scan benchmark uses, and one that has not started (every
# namespace in sidecar mode or outside the mesh: each planned move flips mesh-wide facts).
PLAN_MIXES = {"": None, "-sidecar": ["sidecar", "sidecar", "plain"]}

SNAPSHOT_FLOOR = """
import gc, sys, orjson
gc.disable()
for line in open(sys.argv[1], 'rb'):
    orjson.loads(line)
"""

JSON_DUMP_FLOOR = """
import gc, sys, orjson
gc.disable()
orjson.loads(open(sys.argv[1], 'rb').read())
"""

YAML_DUMP_FLOOR = """
import gc, sys
gc.disable()
from auditor.collect.yamldocs.documents import parse_yaml_documents
parse_yaml_documents(open(sys.argv[1], encoding='utf-8').read())
"""

YAML_FLOOR = """
import gc, sys
from pathlib import Path
gc.disable()
from auditor.collect.yamldocs.documents import parse_yaml_documents
docs = [d for p in sorted(Path(sys.argv[1]).glob('*.yaml')) for d in parse_yaml_documents(p.read_text())]
"""

GET_FLOOR = """
import gc, sys, json, ssl, orjson, urllib3
gc.disable()
url, token, ca = sys.argv[1], sys.argv[2], sys.argv[3]
pool = urllib3.PoolManager(ca_certs=ca, cert_reqs='CERT_REQUIRED')
headers = {'Authorization': 'Bearer ' + token, 'Accept': 'application/json'}
for path in json.loads(sys.argv[4]):
    token_ = None
    while True:
        q = '?limit=500' + ('&continue=' + token_ if token_ else '')
        doc = orjson.loads(pool.request('GET', url + path + q, headers=headers).data)
        token_ = doc['metadata'].get('continue')
        if not token_:
            break
"""

# The collector as a scan runs it: GC off, running pods projected, and the process left
# with os._exit like the CLI does (a scan never frees what it collected).
COLLECT = """
import gc, os, sys
gc.disable()
from auditor.collect.cluster import collect, connect
collection = collect(connect(sys.argv[1]), projected=True)
os._exit(0)
"""

# api.load of one cluster (argv: kubeconfig, context) or of several at once (more contexts).
LOAD_CLUSTERS = """
import gc, os, sys
gc.disable()
from auditor import api
kubeconfig, names = sys.argv[1], sys.argv[2:]
sources = {name: api.ClusterSource(kubeconfig, name) for name in names}
loaded = api.load(sources if len(names) > 1 else sources[names[0]])
assert len(loaded) > 0
os._exit(0)
"""

LISTED = [
    "/api/v1/namespaces", "/api/v1/pods", "/api/v1/services", "/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets", "/apis/apps/v1/replicasets", "/apis/batch/v1/jobs", "/apis/batch/v1/cronjobs",
    "/apis/networking.k8s.io/v1/networkpolicies", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    "/apis/security.istio.io/v1/authorizationpolicies", "/apis/networking.istio.io/v1/virtualservices",
    "/apis/networking.istio.io/v1/destinationrules", "/apis/gateway.networking.k8s.io/v1/gateways",
]


TIME = shutil.which("time") or "/usr/bin/time"


def measure(args: list[str], env: dict | None = None, runs: int = 3) -> dict:
    """The median of `runs` runs of one command (wall time, with the peak RSS of that run)."""
    samples = sorted((_measure_once(args, env) for _ in range(runs)), key=lambda m: m["seconds"])
    return samples[len(samples) // 2]


def measure_pair(first: list[str], second: list[str], runs: int = 3, env: dict | None = None) -> tuple[dict, dict]:
    """Medians of two commands run alternately (first, second, first, ...): on a shared
    machine whose speed drifts, both see the same conditions, so their ratio holds."""
    a, b = [], []
    for _ in range(runs):
        a.append(_measure_once(first, env))
        b.append(_measure_once(second, env))
    return (sorted(a, key=lambda m: m["seconds"])[runs // 2], sorted(b, key=lambda m: m["seconds"])[runs // 2])


def _measure_once(args: list[str], env: dict | None = None) -> dict:
    """Wall time, peak RSS and CPU time of one command. The command is started by /usr/bin/time, a
    small process: a child forked straight from this one (which holds a whole cluster for
    the API server) would report this process's memory as its own high-water mark."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats:
        started = time.perf_counter()
        proc = subprocess.run([TIME, "-o", stats.name, "-f", "%e %M %U %S", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, cwd=ROOT)
        elapsed = time.perf_counter() - started
        fields = stats.read().split()
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    # CPU: user + system time of the command and of the children it waited for (forked
    # shares, Checkov's workers), so work spread over cores is not hidden.
    return {"seconds": round(elapsed, 2), "rss_mb": round(int(fields[-3]) / 1024),
            "cpu_seconds": round(float(fields[-2]) + float(fields[-1]), 2)}


def ensure_data(size: str, mix: str = "") -> Path:
    out = DATA / f"{size}{mix}"
    if not (out / "snapshot.json").exists() or not (out / "yaml").is_dir() or not (out / "dump.yaml").exists():
        from generate import write

        pods = int(size.rstrip("k")) * 1000
        print(f"generating {size}{mix} ...", file=sys.stderr)
        write(pods, out, modes=PLAN_MIXES[mix])
    return out


def scan_args(*extra: str) -> list[str]:
    return [PY, "-m", "auditor", "scan", *extra, "-o", "sarif", "--output-file", os.devnull, "--fail-on", "never", "-q"]


def bench_size(size: str) -> dict:
    data = ensure_data(size)
    result = {"size": size, "snapshot_mb": round((data / "snapshot.json").stat().st_size / 1048576),
              "manifests_mb": round(sum(p.stat().st_size for p in (data / "yaml").glob("*.yaml")) / 1048576, 1)}
    result["snapshot_floor"], result["snapshot_scan"] = measure_pair(
        [PY, "-c", SNAPSHOT_FLOOR, str(data / "snapshot.json")], scan_args("--snapshot", str(data / "snapshot.json")))
    result["yaml_floor"], result["yaml_scan"] = measure_pair([PY, "-c", YAML_FLOOR, str(data / "yaml")],
                                                             scan_args(str(data / "yaml")))
    result["json_dump_mb"] = round((data / "dump.json").stat().st_size / 1048576)
    result["json_dump_floor"], result["json_dump_scan"] = measure_pair(
        [PY, "-c", JSON_DUMP_FLOOR, str(data / "dump.json")], scan_args("-f", str(data / "dump.json")))
    result["yaml_dump_mb"] = round((data / "dump.yaml").stat().st_size / 1048576)
    result["yaml_dump_floor"], result["yaml_dump_scan"] = measure_pair(
        [PY, "-c", YAML_DUMP_FLOOR, str(data / "dump.yaml")], scan_args("-f", str(data / "dump.yaml")))
    result.update(bench_live(data))
    return result


def bench_live(data: Path) -> dict:
    import orjson
    from kube_api.server import CA_FILE, ApiServer

    crds = [d for d in _yaml_docs(ROOT / "fixtures" / "cluster" / "crds.yaml")]
    objects = orjson.loads((data / "dump.json").read_bytes())["items"] + crds
    with ApiServer(objects) as api, tempfile.TemporaryDirectory() as tmp:
        kubeconfig = api.kubeconfig(Path(tmp) / "kubeconfig")
        floor, collect = measure_pair([PY, "-c", GET_FLOOR, api.url, api.token, str(CA_FILE), json.dumps(LISTED)],
                                      [PY, "-c", COLLECT, str(kubeconfig)])
        scan = measure(scan_args("--kubeconfig", str(kubeconfig)))
        snapshot = measure([PY, "-m", "auditor", "snapshot", "--kubeconfig", str(kubeconfig), "-q",
                            "-o", str(Path(tmp) / "snapshot.json.gz")])
    return {"live_floor": floor, "live_collect": collect, "live_scan": scan, "live_snapshot": snapshot}


def _serve(objects: list, path: str, latency: float, ready) -> None:
    """An API test server in a process of its own (as each cluster's API server is)."""
    import threading

    from kube_api.server import ApiServer

    with ApiServer(objects, latency=latency) as api:
        api.kubeconfig(Path(path))
        ready.set()
        threading.Event().wait()


def bench_multicluster(size: str, latencies: tuple[float, ...] = (0.0, 0.02)) -> dict:
    """Collecting three clusters of `size` at once (each served by its own API test server
    process) against collecting one of them alone; on loopback, and with a round trip of
    20 ms added to every answer, as a network would."""
    import multiprocessing

    import orjson
    import yaml
    from kube_api.server import mesh_kubeconfig

    objects = orjson.loads((ensure_data(size) / "dump.json").read_bytes())["items"]
    objects += [d for d in _yaml_docs(ROOT / "fixtures" / "cluster" / "crds.yaml")]
    fork = multiprocessing.get_context("fork")
    out = {"size": size}
    for latency in latencies:
        with tempfile.TemporaryDirectory() as tmp:
            servers, endpoints = [], {}
            for name in ("a", "b", "c"):
                ready, path = fork.Event(), f"{tmp}/{name}.kubeconfig"
                proc = fork.Process(target=_serve, args=(objects, path, latency, ready), daemon=True)
                proc.start()
                servers.append(proc)
                if not ready.wait(120):
                    raise RuntimeError("an API test server did not start")
                config = yaml.safe_load(Path(path).read_text())
                endpoints[name] = (config["clusters"][0]["cluster"]["server"], config["users"][0]["user"]["token"])
            kubeconfig = mesh_kubeconfig(Path(tmp) / "kubeconfig", endpoints)
            try:
                key = f"{int(latency * 1000)}ms"
                out[f"alone_{key}"], out[f"three_{key}"] = measure_pair(
                    [PY, "-c", LOAD_CLUSTERS, str(kubeconfig), "a"], [PY, "-c", LOAD_CLUSTERS, str(kubeconfig), "a", "b", "c"])
            finally:
                for proc in servers:
                    proc.kill()
                    proc.join()
    return out


def render_multicluster(result: dict) -> tuple[str, bool]:
    lines = [f"Machine: {machine()}.", "",
             f"| round trip | one {result['size']}-pod cluster | three at once | three / one | within {TARGETS['clusters_ratio']}x |",
             "|---|---|---|---|---|"]
    ok = True
    for key, words in (("0ms", "loopback"), ("20ms", "20 ms added per request")):
        if f"alone_{key}" not in result:
            continue
        alone, three = result[f"alone_{key}"], result[f"three_{key}"]
        ratio = three["seconds"] / alone["seconds"]
        met = ratio <= TARGETS["clusters_ratio"]
        ok = ok and met
        lines.append(f"| {words} | {alone['seconds']} s ({alone['cpu_seconds']} s CPU), {alone['rss_mb']} MB | "
                     f"{three['seconds']} s ({three['cpu_seconds']} s CPU), {three['rss_mb']} MB | {ratio:.2f}x | "
                     f"{'yes' if met else '**no**'} |")
    return "\n".join(lines) + "\n", ok


def bench_plan(size: str) -> dict:
    """`plan --snapshot` against `scan --snapshot` of the same snapshot, for each mix."""
    out = {"size": size}
    for mix in PLAN_MIXES:
        snapshot = str(ensure_data(size, mix) / "snapshot.json")
        out[f"scan{mix}"] = measure(scan_args("--snapshot", snapshot))
        out[f"plan{mix}"] = measure([PY, "-m", "auditor", "plan", "--snapshot", snapshot, "-o", f"json={os.devnull}", "-q"])
    return out


def bench_change(size: str) -> dict:
    """A pull request judged against the cluster: one namespace's manifests (a team's
    change, replacing about eighty of its objects) and one deleted Service of another
    namespace, applied over the snapshot with --changes-only, against a scan of the
    snapshot alone."""
    data = ensure_data(size)
    snapshot = str(data / "snapshot.json")
    change, other = sorted((data / "manifests").glob("*.yaml"))[:2]
    service = next(d for d in _yaml_docs(other) if d.get("kind") == "Service")["metadata"]
    delete = f"Service/{service['namespace']}/{service['name']}"
    out = {"size": size, "change": change.name, "delete": delete}
    out["scan"], out["change_scan"] = measure_pair(
        scan_args("--snapshot", snapshot),
        scan_args("--against", snapshot, str(change), "--delete", delete, "--changes-only"))
    return out


def render_change(results: list[dict]) -> tuple[str, bool]:
    lines = [f"Machine: {machine()}.", "",
             "| pods | change | scan --snapshot | scan --against --changes-only | ratio |", "|---|---|---|---|---|"]
    ok = True
    for r in results:
        scan, change = r["scan"], r["change_scan"]
        ratio = change["seconds"] / scan["seconds"]
        if r is results[-1]:
            ok = ratio <= TARGETS["change_ratio"]
        lines.append(f"| {r['size']} | manifests/{r['change']}, --delete {r['delete']} | {scan['seconds']} s "
                     f"({scan['cpu_seconds']} s CPU), {scan['rss_mb']} MB | {change['seconds']} s "
                     f"({change['cpu_seconds']} s CPU), {change['rss_mb']} MB | {ratio:.2f}x |")
    lines += ["", f"Target: --changes-only at most {TARGETS['change_ratio']}x one scan of the snapshot at "
                  f"{results[-1]['size']}: {'met' if ok else '**not met**'}."]
    return "\n".join(lines) + "\n", ok


def render_plan(results: list[dict]) -> tuple[str, bool]:
    lines = [f"Machine: {machine()}.", "", "| pods | mesh | scan --snapshot | plan --snapshot | plan / scan |", "|---|---|---|---|---|"]
    ok = True
    for r in results:
        for mix, words in (("", "in migration (40% ambient, 40% sidecar)"), ("-sidecar", "not started (2/3 sidecar)")):
            scan, plan = r[f"scan{mix}"], r[f"plan{mix}"]
            ratio = plan["seconds"] / scan["seconds"]
            if r is results[-1]:
                ok = ok and ratio <= TARGETS["plan_ratio"]
            lines.append(f"| {r['size']} | {words} | {scan['seconds']} s ({scan['cpu_seconds']} s CPU), {scan['rss_mb']} MB | "
                         f"{plan['seconds']} s ({plan['cpu_seconds']} s CPU), {plan['rss_mb']} MB | {ratio:.2f}x |")
    lines += ["", f"Target: plan at most {TARGETS['plan_ratio']}x scan on the same snapshot at {results[-1]['size']}: "
                  f"{'met' if ok else '**not met**'}."]
    return "\n".join(lines) + "\n", ok


def _update_docs(text: str, start: str, end: str) -> None:
    doc = ROOT / "docs" / "performance.md"
    current = doc.read_text()
    if start not in current:
        current += f"\n{start}\n{end}\n"
    head, _, rest = current.partition(start)
    _, _, tail = rest.partition(end)
    doc.write_text(f"{head}{start}\n{text}{end}{tail}")


def _yaml_docs(path: Path) -> list[dict]:
    import yaml

    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def bench_checkov(size: str, checkov: str | None) -> dict | None:
    """Checkov's Kubernetes scan of the same YAML, once (it takes minutes), without its
    downloads (this machine has no network; the download is not part of the scan)."""
    checkov = checkov or os.environ.get("CHECKOV") or shutil.which("checkov")
    if checkov is None:
        return None
    data = ensure_data(size)
    print(f"checkov on {size} (minutes) ...", file=sys.stderr)
    result = measure([checkov, "-d", str(data / "yaml"), "--framework", "kubernetes", "-o", "json", "--quiet",
                      "--skip-download"], runs=1)
    version = subprocess.run([checkov, "--version"], capture_output=True, text=True).stdout.strip()
    return {**result, "version": version, "size": size}


def check(results: list[dict], checkov: dict | None) -> list[tuple[str, str, bool]]:
    by_size = {r["size"]: r for r in results}
    largest = results[-1]
    out = []
    ratio = largest["snapshot_scan"]["seconds"] / largest["snapshot_floor"]["seconds"]
    out.append((f"scan --snapshot within {TARGETS['snapshot_ratio']}x the parse floor at {largest['size']}", f"{ratio:.2f}x",
                ratio <= TARGETS["snapshot_ratio"]))
    live = largest["live_collect"]["seconds"] / largest["live_floor"]["seconds"]
    out.append((f"live collection within {TARGETS['live_ratio']}x its floor at {largest['size']}", f"{live:.2f}x",
                live <= TARGETS["live_ratio"]))
    rss = largest["snapshot_scan"]["rss_mb"]
    out.append((f"scan --snapshot peak RSS under {TARGETS['rss_mb']} MB at {largest['size']}", f"{rss} MB", rss < TARGETS["rss_mb"]))
    if "10k" in by_size and largest["size"] != "10k":
        growth = largest["snapshot_scan"]["seconds"] / by_size["10k"]["snapshot_scan"]["seconds"]
        out.append((f"10k -> {largest['size']} growth at most {TARGETS['growth']}x", f"{growth:.2f}x", growth <= TARGETS["growth"]))
    if "10k" in by_size:
        r = by_size["10k"]
        yaml_ratio = r["yaml_scan"]["seconds"] / r["yaml_floor"]["seconds"]
        out.append((f"YAML manifest scan within {TARGETS['yaml_ratio']}x its parser's floor at 10k", f"{yaml_ratio:.2f}x",
                    yaml_ratio <= TARGETS["yaml_ratio"]))
    ratio = largest["json_dump_scan"]["seconds"] / largest["json_dump_floor"]["seconds"]
    out.append((f"JSON dump scan within {TARGETS['json_dump_ratio']}x its floor at {largest['size']}", f"{ratio:.2f}x",
                ratio <= TARGETS["json_dump_ratio"]))
    rss = largest["json_dump_scan"]["rss_mb"]
    out.append((f"JSON dump scan peak RSS at most {TARGETS['json_dump_rss_mb']} MB at {largest['size']}", f"{rss} MB",
                rss <= TARGETS["json_dump_rss_mb"]))
    if "10k" in by_size:
        r = by_size["10k"]
        ratio = r["yaml_dump_scan"]["seconds"] / r["yaml_dump_floor"]["seconds"]
        out.append((f"YAML dump scan within {TARGETS['yaml_dump_ratio']}x its parser's floor at 10k", f"{ratio:.2f}x",
                    ratio <= TARGETS["yaml_dump_ratio"]))
        limit = 2 * r["yaml_dump_mb"] + 200
        out.append((f"YAML dump scan peak RSS at most twice the file plus 200 MB at 10k ({limit} MB)",
                    f"{r['yaml_dump_scan']['rss_mb']} MB", r["yaml_dump_scan"]["rss_mb"] <= limit))
    if checkov is not None and "10k" in by_size:
        speedup = checkov["seconds"] / by_size["10k"]["yaml_scan"]["seconds"]
        out.append(("YAML scan at least 50x faster than Checkov at 10k", f"{speedup:.0f}x", speedup >= 50))
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")) // 1048576
    except (OSError, StopIteration):
        mem = 0
    return f"{cpu}, {os.cpu_count()} cores, {mem} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def render(results: list[dict], checks, checkov) -> str:
    lines = [f"Machine: {machine()}.", "",
             "| pods | snapshot | parse floor | scan --snapshot (SARIF) | YAML | YAML parse floor | YAML scan | "
             "raw GET floor | live collection | live scan | live snapshot (.json.gz) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    dumps = ["", "Dumps as users pipe them in (`kubectl get ... -A -o json`, and `-o yaml`: one List each):", "",
             "| pods | JSON dump | read + orjson floor | scan of it | YAML dump | YAML parse floor | scan of it |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        def cell(key):
            m = r[key]
            return f"{m['seconds']} s ({m.get('cpu_seconds', '?')} s CPU), {m['rss_mb']} MB"
        lines.append(f"| {r['size']} | {r['snapshot_mb']} MB | {cell('snapshot_floor')} | {cell('snapshot_scan')} | "
                     f"{r['manifests_mb']} MB | {cell('yaml_floor')} | {cell('yaml_scan')} | {cell('live_floor')} | "
                     f"{cell('live_collect')} | {cell('live_scan')} | {cell('live_snapshot') if 'live_snapshot' in r else '-'} |")
        dumps.append(f"| {r['size']} | {r['json_dump_mb']} MB | {cell('json_dump_floor')} | {cell('json_dump_scan')} | "
                     f"{r['yaml_dump_mb']} MB | {cell('yaml_dump_floor')} | {cell('yaml_dump_scan')} |")
    lines += dumps
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'yes' if ok else '**no**'} |" for name, value, ok in checks]
    if checkov:
        lines += ["", f"Checkov {checkov['version']} (`checkov -d yaml/ --framework kubernetes --skip-download`, one run) "
                      f"on the {checkov['size']} cluster's YAML: {checkov['seconds']} s ({checkov['cpu_seconds']} s CPU), "
                      f"{checkov['rss_mb']} MB."]
    else:
        lines += ["", "Checkov: not installed on this machine; not measured."]
    return "\n".join(lines) + "\n"


def compile_package() -> None:
    """Byte-compile mesh-audit first, as installing it does: where PYTHONDONTWRITEBYTECODE
    is set (this machine sets it), every run would otherwise compile the package's sources
    again, about 0.15 s that no installed copy spends."""
    import compileall

    compileall.compile_dir(str(ROOT / "auditor"), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,50k", help="comma-separated: 1k, 10k, 50k, ...")
    parser.add_argument("--update-docs", action="store_true", help="rewrite the results section of docs/performance.md")
    parser.add_argument("--checkov", metavar="PATH", help="Checkov executable (default: $CHECKOV, else checkov on PATH)")
    parser.add_argument("--no-checkov", action="store_true", help="skip Checkov even where it is installed")
    parser.add_argument("--plan", action="store_true", help="measure mesh-audit plan against scan instead")
    parser.add_argument("--change", action="store_true",
                        help="measure scan --against SNAPSHOT CHANGE --changes-only against scan --snapshot instead")
    parser.add_argument("--clusters", action="store_true",
                        help="measure collecting three clusters at once against one (at the first size) instead")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    compile_package()
    # The other benchmarks: each measured against a scan, with its own section of the docs.
    other = {"clusters": lambda: render_multicluster(bench_multicluster(sizes[0])),
             "change": lambda: render_change([bench_change(size) for size in sizes]),
             "plan": lambda: render_plan([bench_plan(size) for size in sizes])}
    for name, run in other.items():
        if getattr(args, name):
            text, ok = run()
            print(text)
            if args.update_docs:
                _update_docs(text, f"<!-- {name}:start -->", f"<!-- {name}:end -->")
            sys.exit(0 if ok else 1)
    results = [bench_size(size) for size in sizes]
    checkov = bench_checkov("10k", args.checkov) if "10k" in sizes and not args.no_checkov else None
    checks = check(results, checkov)
    text = render(results, checks, checkov)
    print(text)
    (ROOT / "bench" / "results.json").write_text(json.dumps({"machine": machine(), "results": results, "checkov": checkov,
                                                             "checks": checks}, indent=2) + "\n")
    if args.update_docs:
        _update_docs(text, "<!-- results:start -->", "<!-- results:end -->")
    sys.exit(0 if all(ok for _, _, ok in checks) else 1)


if __name__ == "__main__":
    main()
