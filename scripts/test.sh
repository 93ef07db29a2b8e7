#!/usr/bin/env bash
# Every test of callhook: formatting, clippy, the template lint (cfn-lint, then sam validate
# --lint) and the offline deploy rehearsal (scripts/deploy-check.sh), the whole workspace's tests with DynamoDB Local started for the end-to-end crates (and
# stopped on exit, whatever happens), then a 60 s fuzzing smoke run. The reliability suites run
# here in their fast tier; their long tier and a long fuzz run are scripts/reliability.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "function dependencies"
scripts/function-deps.sh

step "template"
scripts/cfn-lint.sh
scripts/deploy-check.sh

step "DynamoDB Local"
pidfile="$(mktemp -t callhook-ddb.XXXXXX.pid)"
trap 'scripts/dynamodb-local.sh stop "$pidfile" >/dev/null 2>&1 || true; rm -f "$pidfile"' EXIT
CALLHOOK_TEST_DYNAMODB_ENDPOINT="$(scripts/dynamodb-local.sh start --pidfile "$pidfile")"
export CALLHOOK_TEST_DYNAMODB_ENDPOINT CALLHOOK_TEST_DYNAMODB_PIDFILE="$pidfile"
echo "DynamoDB Local at $CALLHOOK_TEST_DYNAMODB_ENDPOINT" >&2

step "Chromium (the web view's browser test)"
CALLHOOK_CHROMIUM="$(scripts/chromium.sh)"
export CALLHOOK_CHROMIUM

step "tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "fuzzing smoke (60 s)"
scripts/fuzz.sh smoke
