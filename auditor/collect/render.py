"""Helm charts and Kustomize directories, rendered the way they are deployed.

A folder with a Chart.yaml is a chart: its templates are not YAML until `helm template`
renders them (release name, namespace and values files from the configuration). A folder
with a kustomization.yaml is built with `kustomize build`, else `kubectl kustomize`
(kubectl bundles kustomize); the files it consumes are not read again on their own, and
a base that an overlay builds on is audited through the overlay, as it is deployed.

Each rendered object keeps where it came from: Helm's `# Source:` comment names the
template, and a wrapper kustomization asks kustomize for origin annotations, which name
the file of each object (the annotation is then removed, as it is not part of the
object). Findings point there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Iterator

from auditor.collect.yamldocs.documents import documents
from auditor.core.errors import UsageError
from auditor.model.snapshot import as_dict

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CHART_FILE = "Chart.yaml"
ORIGIN = "config.kubernetes.io/origin"
TIMEOUT = 120  # seconds for one render
_SOURCE = re.compile(r"^# Source: (.+)$", re.M)


@dataclass
class RenderSettings:
    """How to render what the walk finds; `charts` maps a chart folder (absolute) to its
    {release, namespace, values}."""

    charts: dict = field(default_factory=dict)


class NotRendered(Exception):
    """The tool to render a source is not installed: the source is skipped, and says so."""


def kustomization_file(directory: str) -> str | None:
    for name in KUSTOMIZATION_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def is_chart(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, CHART_FILE))


# -- Helm -------------------------------------------------------------------------------------

def render_chart(chart: str, settings: RenderSettings) -> str:
    helm = shutil.which("helm")
    if helm is None:
        raise NotRendered("helm is not installed (put it on the PATH to audit the chart as it renders)")
    options = settings.charts.get(os.path.abspath(chart), {})
    release = options.get("release") or os.path.basename(os.path.abspath(chart)) or "release"
    command = [helm, "template", release, chart, "--namespace", options.get("namespace") or "default"]
    for values in options.get("values", []):
        command += ["--values", values]
    return _run(command, chart, "helm template")


def chart_documents(text: str, chart: str) -> Iterator[tuple[object, str, int]]:
    """(document, template file, line) of each document `helm template` printed. A
    document's line is where its kind is written in the template (the first such line not
    used by an earlier document of that template), else 1."""
    used: dict[str, int] = {}
    for doc, line, _ in documents(text, f"{chart} (helm template)"):
        source = _source_before(text, line)
        if source is None:
            yield doc, chart, 1
            continue
        template = os.path.join(chart, source.split("/", 1)[1] if "/" in source else source)
        nth = used.get(template, 0)
        used[template] = nth + 1
        yield doc, template, _kind_line(template, doc, nth)


def _source_before(text: str, line: int) -> str | None:
    """The `# Source:` comment closest above a document's first line."""
    end = _offset_of_line(text, line)
    found = None
    for m in _SOURCE.finditer(text, 0, end):
        found = m.group(1).strip()
    return found


def _offset_of_line(text: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = text.index("\n", offset) + 1
    return offset


def _kind_line(template: str, doc, nth: int) -> int:
    kind = as_dict(doc).get("kind") if isinstance(doc, dict) else None
    try:
        with open(template, encoding="utf-8") as fh:
            lines = [i for i, text in enumerate(fh, start=1) if text.strip() == f"kind: {kind}"]
    except OSError:
        return 1
    return lines[nth] if nth < len(lines) else (lines[0] if lines else 1)


# -- Kustomize --------------------------------------------------------------------------------

def kustomize_command() -> list[str]:
    if shutil.which("kustomize"):
        return [shutil.which("kustomize"), "build"]
    if shutil.which("kubectl"):
        return [shutil.which("kubectl"), "kustomize"]
    raise NotRendered("neither kustomize nor kubectl is installed (either renders a kustomization)")


def render_kustomization(directory: str) -> tuple[str, str]:
    """(YAML, the folder the origin paths are relative to). Built through a wrapper
    kustomization that asks for origin annotations, leaving the user's files as they are."""
    command = kustomize_command()
    wrapper = tempfile.mkdtemp(prefix="mesh-audit-kustomize-")
    try:
        target = os.path.relpath(os.path.abspath(directory), wrapper)
        with open(os.path.join(wrapper, "kustomization.yaml"), "w", encoding="utf-8") as fh:
            fh.write(f"resources:\n- {target}\nbuildMetadata: [originAnnotations]\n")
        return _run([*command, wrapper], directory, " ".join(os.path.basename(c) for c in command)), wrapper
    finally:
        shutil.rmtree(wrapper, ignore_errors=True)


def kustomize_documents(text: str, directory: str, wrapper: str) -> Iterator[tuple[object, str, int]]:
    """(document, source file, line) of each built object: the file its origin annotation
    names and the object's line there, else the kustomization file."""
    lines_of: dict[str, dict] = {}
    fallback = kustomization_file(directory) or directory
    named = (lambda p: p) if os.path.isabs(directory) else os.path.relpath  # as the user named the folder
    for doc, _, _ in documents(text, f"{directory} (kustomize build)"):
        origin = _pop_origin(doc)
        path = named(os.path.normpath(os.path.join(wrapper, origin["path"]))) if origin.get("path") else None
        if path is None and origin.get("configuredIn"):
            path = named(os.path.normpath(os.path.join(wrapper, origin["configuredIn"])))
        if path is None or not os.path.isfile(path):
            yield doc, fallback, 1
            continue
        if path not in lines_of:
            lines_of[path] = _object_lines(path)
        meta = as_dict(as_dict(doc).get("metadata")) if isinstance(doc, dict) else {}
        yield doc, path, lines_of[path].get((as_dict(doc).get("kind") if isinstance(doc, dict) else None, meta.get("name")), 1)


def _pop_origin(doc) -> dict:
    import yaml

    meta = as_dict(doc.get("metadata")) if isinstance(doc, dict) else {}
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or ORIGIN not in annotations:
        return {}
    origin = annotations.pop(ORIGIN)
    if not annotations:
        del meta["annotations"]
    try:
        return as_dict(yaml.safe_load(origin))
    except yaml.YAMLError:
        return {}


def _object_lines(path: str) -> dict[tuple, int]:
    """(kind, name) -> line of each object in a source file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        found = {}
        for doc, line, _ in documents(text, path):
            if isinstance(doc, dict):
                found.setdefault((doc.get("kind"), as_dict(doc.get("metadata")).get("name")), line)
        return found
    except (OSError, UnicodeDecodeError, UsageError):
        return {}


def referenced_paths(directory: str) -> list[str]:
    """Files and folders a kustomization consumes (resources, bases, components, patches,
    generator files), absolute; remote references (URLs) are left out."""
    import yaml

    path = kustomization_file(directory)
    try:
        with open(path, encoding="utf-8") as fh:
            spec = as_dict(yaml.safe_load(fh))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    entries: list = []
    for key in ("resources", "bases", "components", "patchesStrategicMerge", "crds", "configurations"):
        entries += [e for e in spec.get(key) or [] if isinstance(e, str)]
    for key in ("patches", "patchesJson6902"):
        entries += [as_dict(p).get("path") for p in spec.get(key) or [] if isinstance(as_dict(p).get("path"), str)]
    for key in ("configMapGenerator", "secretGenerator"):
        for generator in spec.get(key) or []:
            for source in (as_dict(generator).get("files") or []) + (as_dict(generator).get("envs") or []):
                if isinstance(source, str):
                    entries.append(source.split("=", 1)[-1])
    return [os.path.abspath(os.path.join(directory, e)) for e in entries if "://" not in e and not e.startswith("git@")]


def _run(command: list[str], source: str, what: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UsageError(f"{what} did not finish in {TIMEOUT} s", source) from None
    except OSError as err:
        raise UsageError(f"{what} could not run: {err.strerror or err}", source) from None
    if done.returncode != 0:
        problem = next((line.strip() for line in done.stderr.splitlines() if line.strip()), f"exit code {done.returncode}")
        raise UsageError(f"{what} failed: {problem}", source)
    return done.stdout
