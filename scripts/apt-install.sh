#!/usr/bin/env bash
# Installs Debian packages for the project's scripts: `scripts/apt-install.sh WHY PACKAGE...`.
# As root, from Debian's archive (the package lists are refreshed only if the install needs it);
# otherwise says which command to run, and fails.
set -euo pipefail
why="$1"
shift
if [ "$(id -u)" -ne 0 ]; then
  echo "apt-install: $why needs root: sudo apt-get install -y $*" >&2
  exit 1
fi
echo "apt-install: installing Debian's $* ($why)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "$@" >&2 || { apt-get update -qq >&2 && apt-get install -y -qq "$@" >&2; }
