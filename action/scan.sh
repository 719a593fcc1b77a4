#!/usr/bin/env bash
# The Scan step of action.yml: one mesh-audit run writes the SARIF for code scanning, the
# pull-request annotations (on stdout, where the runner reads workflow commands), the job's
# step summary and a JSON report whose counts become the step's outputs.
#
# Inputs arrive as environment variables (never spliced into this script):
#   MESH_AUDIT_PATHS  files or folders, separated by spaces          (default .)
#   MESH_AUDIT_ARGS   further options for `mesh-audit scan`
#   MESH_AUDIT_SARIF  where to write the SARIF                        (default mesh-audit.sarif)
#   MESH_AUDIT_FAIL_ON  error|warning|info|never; empty: the configuration decides
#   MESH_AUDIT_CATEGORY  SARIF category (automationDetails.id); empty: upload-sarif's decides
#   MESH_AUDIT_ANNOTATIONS, MESH_AUDIT_SUMMARY  "false" turns them off
#   MESH_AUDIT_AGAINST  a snapshot file or "cluster": the paths are a change applied to it
#   MESH_AUDIT_CHANGES_ONLY  "true": only the findings the change adds count
#   MESH_AUDIT_DIFF_BASE  a git ref: what the paths held there and no longer do is deleted
#   MESH_AUDIT_BIN  the mesh-audit of the action's own environment (default: the one on PATH)
# and GitHub's own: GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP.
set -u
paths=${MESH_AUDIT_PATHS:-.}
sarif=${MESH_AUDIT_SARIF:-mesh-audit.sarif}
report="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mesh-audit-report.json"

args=(scan)
read -r -a words <<< "$paths"
args+=("${words[@]}")
if [ -n "${MESH_AUDIT_ARGS:-}" ]; then
  read -r -a words <<< "$MESH_AUDIT_ARGS"
  args+=("${words[@]}")
fi
args+=(-o "sarif=$sarif" -o "json=$report")
if [ "${MESH_AUDIT_ANNOTATIONS:-true}" != "false" ]; then
  args+=(-o github)
fi
if [ "${MESH_AUDIT_SUMMARY:-true}" != "false" ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  args+=(-o "markdown=$GITHUB_STEP_SUMMARY")
fi
if [ -n "${MESH_AUDIT_FAIL_ON:-}" ]; then
  args+=(--fail-on "$MESH_AUDIT_FAIL_ON")
fi
if [ -n "${MESH_AUDIT_CATEGORY:-}" ]; then
  args+=(--category "$MESH_AUDIT_CATEGORY")
fi
if [ -n "${MESH_AUDIT_AGAINST:-}" ]; then
  args+=(--against "$MESH_AUDIT_AGAINST")
  if [ "${MESH_AUDIT_CHANGES_ONLY:-false}" = "true" ]; then
    args+=(--changes-only)
  fi
  if [ -n "${MESH_AUDIT_DIFF_BASE:-}" ]; then
    args+=(--diff-base "$MESH_AUDIT_DIFF_BASE")
  fi
elif [ "${MESH_AUDIT_CHANGES_ONLY:-false}" = "true" ] || [ -n "${MESH_AUDIT_DIFF_BASE:-}" ]; then
  echo "mesh-audit: error: the changes-only and diff-base inputs judge a change against a base: set against" >&2
  exit 2
fi

"${MESH_AUDIT_BIN:-mesh-audit}" "${args[@]}"
code=$?

{
  echo "exit-code=$code"
  echo "sarif-file=$sarif"
  if [ -s "$report" ]; then
    python="python3"
    if [ -n "${MESH_AUDIT_BIN:-}" ]; then
      python="$(dirname "$MESH_AUDIT_BIN")/python"  # the action's own environment
    fi
    "$python" - "$report" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))["summary"]
print(f"errors={summary['error']}\nwarnings={summary['warning']}\ninfo={summary['info']}\nfindings={summary['findings']}")
print(f"complete={'true' if summary['complete'] else 'false'}")
PY
  fi
} >> "${GITHUB_OUTPUT:-/dev/null}"
exit "$code"
