#!/usr/bin/env bash
# `make dev`: the whole stack on this machine. Installs DynamoDB Local on first use (checking for
# Java 17+), builds `callhook`, starts DynamoDB Local (in memory; --persist keeps data in
# .local/data), runs `callhook dev`, and on Ctrl-C stops everything it started. With
# CALLHOOK_DYNAMODB_ENDPOINT set, that DynamoDB is used instead. CALLHOOK_BIN runs that callhook
# binary instead of building one (the tests do).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

persist=""
for arg in "$@"; do
  case "$arg" in
    --persist) persist=".local/data" ;;
    *) echo "usage: scripts/dev.sh [--persist]" >&2; exit 2 ;;
  esac
done

if [[ -z "${CALLHOOK_DYNAMODB_ENDPOINT:-}" ]]; then
  scripts/dynamodb-local.sh install >/dev/null
fi

bin="${CALLHOOK_BIN:-}"
if [[ -z "$bin" ]]; then
  echo "building callhook (the first build takes a few minutes)..." >&2
  cargo build --quiet -p callhook-cli
  bin=target/debug/callhook
fi

if [[ -z "${CALLHOOK_DYNAMODB_ENDPOINT:-}" ]]; then
  pidfile=".local/dev-dynamodb.$$.pid"
  args=(--pidfile "$pidfile")
  [[ -n "$persist" ]] && args+=(--persist "$persist")
  # The trap is set before the start: an interrupted start still stops what it started.
  trap 'scripts/dynamodb-local.sh stop "$pidfile" >/dev/null 2>&1 || true' EXIT
  CALLHOOK_DYNAMODB_ENDPOINT="$(scripts/dynamodb-local.sh start "${args[@]}")"
  export CALLHOOK_DYNAMODB_ENDPOINT
  echo "DynamoDB Local: $CALLHOOK_DYNAMODB_ENDPOINT${persist:+ (data kept in $persist)}" >&2
fi

# Not exec: the trap above must run after callhook exits.
"$bin" dev
