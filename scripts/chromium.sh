#!/usr/bin/env bash
# Install headless Chromium for the web view's browser test (cli/tests/ui.rs), from Debian's
# `chromium` package, if it is not installed yet, and a Korean font (`fonts-nanum`) so that the
# seed calls' Korean conversations read in the screenshots instead of as boxes. Needs root
# (apt-get). Prints the binary's path.
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
if [ -z "$(fc-list :lang=ko 2>/dev/null)" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    log "installing Debian's fonts-nanum (Korean) for the screenshots"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq fonts-nanum >&2 || { apt-get update -qq >&2 && apt-get install -y -qq fonts-nanum >&2; }
  else
    log "no Korean font: the screenshots show Korean text as boxes (sudo apt-get install fonts-nanum)"
  fi
fi
log "$(chromium --version 2>/dev/null || true)"
command -v chromium
