#!/usr/bin/env bash
# `make dev`: the whole stack on this machine. Installs DynamoDB Local on first use, starts it
# (in memory; --persist keeps data in .local/data), builds and runs `callhook dev`, and on Ctrl-C
# stops everything it started. With CALLHOOK_DYNAMODB_ENDPOINT set, that DynamoDB is used instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

persist=""
for arg in "$@"; do
  case "$arg" in
    --persist) persist=".local/data" ;;
    *) echo "usage: scripts/dev.sh [--persist]" >&2; exit 2 ;;
  esac
done

cargo build --quiet -p callhook-cli

if [[ -z "${CALLHOOK_DYNAMODB_ENDPOINT:-}" ]]; then
  scripts/dynamodb-local.sh install >/dev/null
  pidfile=".local/dev-dynamodb.pid"
  args=(--pidfile "$pidfile")
  [[ -n "$persist" ]] && args+=(--persist "$persist")
  CALLHOOK_DYNAMODB_ENDPOINT="$(scripts/dynamodb-local.sh start "${args[@]}")"
  export CALLHOOK_DYNAMODB_ENDPOINT
  trap 'scripts/dynamodb-local.sh stop "$pidfile" >/dev/null 2>&1 || true' EXIT
  echo "DynamoDB Local: $CALLHOOK_DYNAMODB_ENDPOINT${persist:+ (data kept in $persist)}" >&2
fi

# Not exec: the trap above must run after callhook exits.
target/debug/callhook dev
