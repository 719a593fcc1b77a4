#!/usr/bin/env bash
# The first step of action.yml: where mesh-audit's own virtual environment lives and the
# cache key it is kept under, so that the job's Python is never changed and a second run
# of the same version installs nothing.
#   MESH_AUDIT_AGAINST  the against input: "cluster" needs the kubernetes client (extra)
# Writes venv=, key= and extras= to GITHUB_OUTPUT.
set -euo pipefail
python=$(command -v python3)
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "mesh-audit: error: the runner's python3 is $version; mesh-audit needs 3.10 or later" >&2
  exit 2
}
extras=""
if [ "${MESH_AUDIT_AGAINST:-}" = "cluster" ]; then
  extras="[cluster]"
fi
# The key follows the code of the action itself (its version, for a tag; its files, for ./).
digest=$(cd "$GITHUB_ACTION_PATH" && cat pyproject.toml auditor/__init__.py | sha256sum | cut -c1-16)
venv="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/mesh-audit/${digest}-py${version}${extras:+-cluster}"
{
  echo "venv=$venv"
  echo "key=mesh-audit-${RUNNER_OS:-Linux}-${digest}-py${version}${extras:+-cluster}"
  echo "extras=$extras"
} >> "${GITHUB_OUTPUT:-/dev/null}"
