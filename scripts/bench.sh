#!/usr/bin/env bash
# `make bench`: callhook side by side with the receiver a user would otherwise write (FastAPI +
# uvicorn + boto3, bench/reference/), on this machine, in one run; writes docs/PERFORMANCE.md.
#
# Usage: scripts/bench.sh [STEP...]        (no step: all of them, in this order)
#   tools      bench/.venv, wrk (Debian), cargo-lambda (PyPI, into .local/tools), the arm64 target
#   kernel     CPU per event: criterion (Rust) and timeit (Python) on the same payload files
#   build      release builds: the ingest bootstrap and the `callhook` command
#   coldstart  spawn → first `next` from the Lambda runtime API stub, 30 runs per side (and
#              callhook's again reading its provider secret from the stub, as deployed)
#   serve      10,000 stubbed invocations per side: peak RSS, CPU per invocation, latency
#   writes     DynamoDB requests per new and per duplicate event, counted on the wire
#   units      write units of a 400-turn call: the calls table's against its events'
#   load       wrk against `callhook dev` and against uvicorn, on one DynamoDB Local
#   artifacts  `sam build` of the template (scripts/sam-build.sh), timed; each function's sizes
#   report     docs/PERFORMANCE.md's figures from bench/out/*.json
#
# Results go to bench/out/ (git-ignored); each step overwrites its own JSON files, so a step can
# be re-run alone and `report` picks up the rest. Nothing here is part of `make test`.
# Environment: BENCH_INVOCATIONS (10000), BENCH_COLD_RUNS (30), BENCH_CONNECTIONS (32),
# BENCH_DURATION (20 s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/out"
TOOLS="$ROOT/.local/tools"
PY="$ROOT/bench/.venv/bin/python"
CARGO_LAMBDA_VERSION="1.9.2"
INVOCATIONS="${BENCH_INVOCATIONS:-10000}"
COLD_RUNS="${BENCH_COLD_RUNS:-30}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
DURATION="${BENCH_DURATION:-20}"
mkdir -p "$OUT" "$TOOLS"

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

# A fresh DynamoDB Local for one step, stopped when the step ends (each step runs in a subshell).
# Fresh, because one that already served a table with a stream gets slower (docs/PERFORMANCE.md).
DDB=""
dynamodb() {
  local pidfile="$OUT/dynamodb-$BASHPID.pid"
  DDB="$(scripts/dynamodb-local.sh start --pidfile "$pidfile")"
  DDB_PIDFILE="$pidfile"
  trap 'scripts/dynamodb-local.sh stop "$DDB_PIDFILE" >/dev/null 2>&1 || true' EXIT
  "$PY" bench/python/events_table.py --endpoint "$DDB" >/dev/null
}

step_tools() {
  bench/setup-python.sh
  scripts/dynamodb-local.sh install
  if ! command -v wrk >/dev/null; then
    log "installing wrk from Debian's archive"
    [[ "$(id -u)" == 0 ]] || die "wrk is missing: run \`apt-get install wrk\` as root"
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  fi
  if [[ ! -x "$TOOLS/cargo-lambda/bin/cargo-lambda" ]]; then
    log "installing cargo-lambda $CARGO_LAMBDA_VERSION from PyPI into $TOOLS/cargo-lambda"
    python3 -m venv "$TOOLS/cargo-lambda"
    "$TOOLS/cargo-lambda/bin/pip" install -q "cargo-lambda==$CARGO_LAMBDA_VERSION"
  fi
  # The functions run on arm64 (template.yaml). rustup fetches the target's standard library;
  # where it cannot, the artifacts step builds x86_64 and the report says so.
  rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 \
    || log "the aarch64 target cannot be installed here; artifacts will be x86_64"
}

step_kernel() {
  "$PY" bench/python/bodies.py >/dev/null
  rm -rf "$OUT/criterion"
  CRITERION_HOME="$OUT/criterion" cargo bench -p callhook-bench --bench kernel
  "$PY" bench/python/kernel.py --out "$OUT/kernel-python.json" >/dev/null
}

step_build() {
  cargo build --release -p callhook-lambda
  cargo build --release -p callhook-cli
}

step_coldstart() {
  "$PY" bench/runtime_stub.py coldstart --runs "$COLD_RUNS" --out "$OUT/coldstart-callhook.json" \
    -- target/release/callhook-lambda >/dev/null
  # As deployed: the credentials in the provider secret, read at init (from the stub, on loopback).
  "$PY" bench/runtime_stub.py coldstart --runs "$COLD_RUNS" --provider-secret \
    --out "$OUT/coldstart-callhook-secret.json" -- target/release/callhook-lambda >/dev/null
  (cd bench/python/coldstart && "$PY" ../../runtime_stub.py coldstart --runs "$COLD_RUNS" \
    --out "$OUT/coldstart-python.json" -- "$PY" -m awslambdaric handler.handler >/dev/null)
}

step_serve() {
  dynamodb
  "$PY" bench/runtime_stub.py serve --invocations "$INVOCATIONS" --timeout 1800 \
    --env CALLHOOK_DYNAMODB_ENDPOINT="$DDB" --out "$OUT/serve-callhook.json" \
    -- target/release/callhook-lambda >/dev/null
  "$PY" bench/runtime_stub.py serve --invocations "$INVOCATIONS" --timeout 1800 \
    --cwd bench/python/coldstart --env CALLHOOK_DYNAMODB_ENDPOINT="$DDB" \
    --out "$OUT/serve-python.json" -- "$PY" -m awslambdaric handler.handler >/dev/null
}

step_writes() {
  dynamodb
  "$PY" bench/python/writes.py --endpoint "$DDB" --rust target/release/callhook-lambda \
    --out "$OUT/writes.json" >/dev/null
}

step_units() {
  cargo run --release --locked -q -p callhook-bench --bin write-units -- 400 >"$OUT/units.json"
}

step_load() {
  # callhook goes first; the reference's table has no stream.
  dynamodb
  "$PY" bench/python/load.py --endpoint "$DDB" --ddb-pidfile "$DDB_PIDFILE" \
    --callhook-bin target/release/callhook --connections "$CONNECTIONS" --duration "$DURATION" \
    --out "$OUT/load.json" >/dev/null
}

step_artifacts() {
  # What users deploy: `sam build` of the template (timed), each function's bootstrap and zip.
  scripts/sam-build.sh --out "$OUT/artifacts.json" >/dev/null
  "$PY" - "$OUT/artifacts.json" <<'EOF'
import json, sys, zipfile
from pathlib import Path
out = Path(sys.argv[1])
report = json.loads(out.read_text())
# The Python Lambda's own code, zipped the same way (its runtime brings Python and boto3).
reference = out.parent / "reference-lambda.zip"
with zipfile.ZipFile(reference, "w", zipfile.ZIP_DEFLATED) as z:
    z.write("bench/python/coldstart/handler.py", "handler.py")
    z.write("bench/reference/ingest.py", "ingest.py")
report["reference_zip_bytes"] = reference.stat().st_size
out.write_text(json.dumps(report, indent=2) + "\n")
EOF
}

step_report() {
  "$PY" bench/report.py --out-dir "$OUT" --doc docs/PERFORMANCE.md
}

ALL=(tools kernel build coldstart serve writes units load artifacts report)
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=("${ALL[@]}")
for step in "${steps[@]}"; do
  declare -F "step_$step" >/dev/null || die "unknown step \`$step\` (steps: ${ALL[*]})"
done
# A failed step does not stop the others: the report says which figures are missing, and the
# script exits non-zero naming the steps that failed.
failed=()
for step in "${steps[@]}"; do
  log "── $step"
  started=$SECONDS
  if ( set -e; "step_$step" ); then
    log "   $step took $((SECONDS - started)) s"
  else
    log "   $step FAILED after $((SECONDS - started)) s"
    failed+=("$step")
  fi
done
[[ ${#failed[@]} -eq 0 ]] || die "failed steps: ${failed[*]}"
