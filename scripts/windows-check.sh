#!/usr/bin/env bash
# Type-checks the `callhook` command for Windows (x86_64-pc-windows-gnu): the CLI is the one part
# of callhook users run on their own machines, and unix-only code there must stay gated.
#
# Needs the Rust standard library for the target (`rustup target add x86_64-pc-windows-gnu`,
# from Rust's own download server) and MinGW's C compiler for the TLS stack's build script
# (Debian's gcc-mingw-w64-x86-64, installed here when missing). Not part of `make test`: a
# machine that reaches only crates.io, PyPI, npm and Debian cannot add the target.
#
# Usage: scripts/windows-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "windows-check: $*" >&2; }
TARGET=x86_64-pc-windows-gnu

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  log "adding the $TARGET standard library (rustup target add $TARGET)"
  rustup target add "$TARGET" >&2
fi
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 \
  || scripts/apt-install.sh "the TLS stack's C code for Windows" gcc-mingw-w64-x86-64
cargo check --locked -p callhook-cli --bin callhook --target "$TARGET"
log "callhook compiles for $TARGET"
