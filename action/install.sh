#!/usr/bin/env bash
# The install step of action.yml: mesh-audit into its own virtual environment (restored
# from the cache when the same version ran before, and then left as it is).
#   MESH_AUDIT_VENV    where the environment lives (action/env.sh)
#   MESH_AUDIT_EXTRAS  "[cluster]" when the scan reads a live cluster, else empty
set -euo pipefail
if [ -x "$MESH_AUDIT_VENV/bin/mesh-audit" ] && "$MESH_AUDIT_VENV/bin/mesh-audit" --version > /dev/null 2>&1; then
  echo "mesh-audit: using the cached install in $MESH_AUDIT_VENV"
  exit 0
fi
python3 -m venv "$MESH_AUDIT_VENV"
"$MESH_AUDIT_VENV/bin/python" -m pip install --quiet "${GITHUB_ACTION_PATH}${MESH_AUDIT_EXTRAS:-}"
