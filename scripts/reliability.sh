#!/usr/bin/env bash
# The long tier of the reliability suites plus a long fuzz run, and docs/RELIABILITY.md's figures
# from them. (`make test` runs the fast tier and a 60 s fuzz smoke.)
#
# Usage: scripts/reliability.sh [FUZZ_SECONDS_PER_TARGET]     (default 600)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
fuzz_seconds="${1:-600}"

out="$ROOT/target/reliability"
rm -rf "$out"
mkdir -p "$out"

scripts/dynamodb-local.sh install >/dev/null
pidfile="$out/dynamodb.pid"
trap 'scripts/dynamodb-local.sh stop "$pidfile" >/dev/null 2>&1 || true' EXIT
endpoint="$(scripts/dynamodb-local.sh start --pidfile "$pidfile")"

CALLHOOK_RELIABILITY_TIER=long \
CALLHOOK_RELIABILITY_REPORT="$out/suites.jsonl" \
CALLHOOK_TEST_DYNAMODB_ENDPOINT="$endpoint" \
  cargo nextest run --locked -p callhook-e2e --no-fail-fast --test-threads 1 \
    -E 'binary(reliability) | binary(bus) | test(a_permanent_failure_is_recorded_not_retried_and_its_neighbours_merge)'

CALLHOOK_FUZZ_REPORT="$out/fuzz.jsonl" scripts/fuzz.sh run "$fuzz_seconds"

python3 scripts/reliability-doc.py "$out" docs/RELIABILITY.md
echo "reliability: figures written to docs/RELIABILITY.md" >&2
