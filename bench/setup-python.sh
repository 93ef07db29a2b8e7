#!/usr/bin/env bash
# Create bench/.venv (Python 3.11) with exactly the packages pinned in bench/requirements.txt.
#
# Usage: bench/setup-python.sh [--force]
#
# Idempotent: the venv carries a stamp (SHA-256 of requirements.txt + the interpreter's version);
# when it matches, nothing is done. Any change rebuilds the venv from scratch, so no package left
# over from an older requirements.txt can skew a measurement. The interpreter is `python3.11`
# from PATH (or $PYTHON), falling back to `python3` when that is a 3.11.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$BENCH/.venv"
REQ="$BENCH/requirements.txt"
STAMP="$VENV/.requirements.stamp"

log() { echo "setup-python: $*" >&2; }
die() { log "$*"; exit 1; }

force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  *) die "usage: $0 [--force]" ;;
esac

is_py311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; }

python=""
for candidate in "${PYTHON:-}" python3.11 python3; do
  [[ -n "$candidate" ]] || continue
  if command -v "$candidate" >/dev/null 2>&1 && is_py311 "$candidate"; then
    python="$(command -v "$candidate")"
    break
  fi
done
[[ -n "$python" ]] || die "Python 3.11 not found on PATH (tried \$PYTHON, python3.11, python3)"
# pyenv and similar put shims on PATH: resolve the real interpreter, so the venv does not depend
# on the shim's configuration.
python="$("$python" -c 'import sys; print(sys.executable)')"
"$python" -c 'import venv, ensurepip' 2>/dev/null \
  || die "$python lacks venv/ensurepip (Debian: apt-get install python3.11-venv)"

want="$( { "$python" -c 'import sys; print(sys.version)'; sha256sum <"$REQ"; } | sha256sum | cut -d' ' -f1)"

# Serialize concurrent runs (two benchmarks started at once must not both rebuild the venv).
mkdir -p "$BENCH"
exec 9>"$BENCH/.venv.lock"
flock 9

if (( !force )) && [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  log "bench/.venv is up to date ($("$VENV/bin/python" -V))"
  exit 0
fi

log "creating bench/.venv with $("$python" -V) ($python)"
rm -rf "$VENV"
"$python" -m venv "$VENV"
# --no-deps: requirements.txt is the whole closure, pinned; `pip check` proves it is complete.
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
  --no-deps --only-binary=:all: -r "$REQ"
"$VENV/bin/python" -m pip check --disable-pip-version-check >&2
"$VENV/bin/python" -c 'import fastapi, uvicorn, boto3, awslambdaric, runtime_client' \
  || die "the installed packages do not import"
echo "$want" >"$STAMP"
log "bench/.venv ready: $("$VENV/bin/python" -V), $(grep -cE '^[A-Za-z]' "$REQ") pinned packages"
