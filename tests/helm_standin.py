"""A stand-in for `helm template`, for tests: this machine has no helm binary, so the tests
put this script on the PATH under the name `helm`.

It renders the subset of Go templates the test chart uses, the way helm prints it:
`{{ .Release.Name }}`, `.Release.Namespace`, `.Chart.Name`, `.Values.a.b` (values.yaml,
then each --values file merged over it), `{{- include "name" . | nindent N }}` of a
`define` in templates/_*.tpl, and `{{- if .Values.x }} ... {{- end }}` on lines of their
own; each template's output follows `---` and `# Source: <chart>/templates/<file>`.
Anything else (`helm version`, an unknown option) exits 1, as a real failure would.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

VALUE = re.compile(r"\{\{-?\s*(\.[A-Za-z.]+)\s*-?\}\}")
INCLUDE = re.compile(r"\{\{-?\s*include \"([^\"]+)\" \. \| nindent (\d+)\s*-?\}\}")
IF = re.compile(r"^\s*\{\{-?\s*if (\.[A-Za-z.]+)\s*-?\}\}\s*$")
END = re.compile(r"^\s*\{\{-?\s*end\s*-?\}\}\s*$")
DEFINE = re.compile(r"\{\{-?\s*define \"([^\"]+)\"\s*-?\}\}\n(.*?)\{\{-?\s*end\s*-?\}\}", re.S)


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def lookup(scope: dict, path: str):
    value = scope
    for part in path.strip(".").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def substitute(text: str, scope: dict, helpers: dict) -> str:
    def include(m):
        body = substitute(helpers[m.group(1)], scope, helpers).strip("\n")
        return "\n" + "\n".join(" " * int(m.group(2)) + line for line in body.splitlines())

    text = re.sub(r"[ \t]*\{\{-\s*include", "{{- include", text)  # {{- trims the indentation before it
    text = re.sub(r"\n?\{\{- include", "{{- include", text)
    text = INCLUDE.sub(include, text)
    return VALUE.sub(lambda m: str(lookup(scope, m.group(1))), text)


def render(template: str, scope: dict, helpers: dict) -> str:
    out, keep = [], [True]
    for line in template.splitlines():
        if IF.match(line):
            keep.append(keep[-1] and bool(lookup(scope, IF.match(line).group(1))))
        elif END.match(line):
            keep.pop()
        elif keep[-1]:
            out.append(line)
    return substitute("\n".join(out) + "\n", scope, helpers)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "template":
        sys.stderr.write(f"Error: the helm stand-in only renders templates, not {' '.join(argv)}\n")
        return 1
    release, chart, rest = argv[1], Path(argv[2]), argv[3:]
    namespace, values_files = "default", []
    while rest:
        option, value, rest = rest[0], rest[1], rest[2:]
        if option == "--namespace":
            namespace = value
        elif option == "--values":
            values_files.append(value)
        else:
            sys.stderr.write(f"Error: unknown flag: {option}\n")
            return 1
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    for path in values_files:
        values = merge(values, yaml.safe_load(Path(path).read_text()) or {})
    scope = {"Release": {"Name": release, "Namespace": namespace}, "Chart": {"Name": meta["name"]}, "Values": values}
    helpers = {m.group(1): m.group(2) for tpl in sorted((chart / "templates").glob("_*.tpl"))
               for m in DEFINE.finditer(tpl.read_text())}
    for template in sorted((chart / "templates").glob("*.yaml")):
        body = render(template.read_text(), scope, helpers)
        if body.strip():
            sys.stdout.write(f"---\n# Source: {meta['name']}/templates/{template.name}\n{body}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
