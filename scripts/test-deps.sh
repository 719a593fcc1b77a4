#!/bin/sh
# System packages the tests need: Debian's chromium, for the browser test of the plan's
# HTML report (playwright, from the test extra, drives it; no browser is downloaded).
# Installs only what is missing, and only where apt-get can (root on Debian or Ubuntu).
set -e
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "scripts/test-deps.sh: no apt-get here: install Chromium yourself for the browser test" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || {
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq chromium >/dev/null
}
