#!/usr/bin/env bash
# System packages the test suite needs beyond the Python ones: headless Chromium, which renders
# the search report (report.html) in tests/search/test_report.py. Idempotent: nothing happens
# when /usr/bin/chromium is already there. Uses apt's configured Debian mirrors only; needs root
# (or sudo). Without it the Chromium test is skipped, not failed.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium: already installed (/usr/bin/chromium)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: no apt-get on this machine; install Chromium yourself to run the report's" \
    "rendering test (it is skipped without it)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "chromium: not root and no sudo; the report's rendering test will be skipped" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends chromium; }; then
  echo "chromium: apt-get could not install it; the report's rendering test will be skipped" >&2
  exit 0
fi
echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo unknown version))"
