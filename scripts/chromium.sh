#!/usr/bin/env bash
# Install headless Chromium for the web view's browser test (cli/tests/ui.rs), from Debian's
# `chromium` package, if it is not installed yet, and a Korean font (`fonts-nanum`) so that the
# seed calls' Korean conversations read in the screenshots instead of as boxes. Needs root
# (apt-get). Prints the binary's path.
#
# Usage: scripts/chromium.sh
set -euo pipefail

log() { echo "chromium: $*" >&2; }

here="$(dirname "${BASH_SOURCE[0]}")"
command -v chromium >/dev/null 2>&1 || "$here/apt-install.sh" "the browser test" chromium
if [ -z "$(fc-list :lang=ko 2>/dev/null)" ]; then
  "$here/apt-install.sh" "Korean text in the screenshots" fonts-nanum \
    || log "no Korean font: the screenshots show Korean text as boxes"
fi
log "$(chromium --version 2>/dev/null || true)"
command -v chromium
