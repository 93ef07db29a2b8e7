#!/usr/bin/env bash
# Install headless Chromium for the web view's browser test (cli/tests/ui.rs), from Debian's
# `chromium` package, if it is not installed yet. Needs root (apt-get). Prints the binary's path.
#
# Usage: scripts/chromium.sh
set -euo pipefail

log() { echo "chromium: $*" >&2; }

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    log "chromium is not installed and installing it needs root: sudo apt-get install -y chromium"
    exit 1
  fi
  log "installing Debian's chromium package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
fi
log "$(chromium --version 2>/dev/null || true)"
command -v chromium
