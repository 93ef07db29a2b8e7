#!/usr/bin/env bash
# `make deploy-rehearsal`: the stack deployed as CloudFormation would deploy it, before AWS sees
# it. template.yaml goes, with its SAM transform, into the open-source AWS emulator fakecloud;
# every provider's example is sent through the HTTP API it creates; the records are read back
# with `callhook`; then the provider secret is rotated under the running stack.
# (scripts/deploy_rehearsal.py says what it checks and the two things it must change.)
#
# fakecloud (AGPL-3.0) is built and run as a separate tool, never linked into callhook: the
# first run installs it from crates.io into .local/tools/fakecloud (a debug build, about 20
# minutes on 2 cores); later runs take about 6 minutes. It runs Lambda code through a container
# CLI; scripts/lambda-launcher.py stands in for one and runs the functions' x86_64 bootstraps as
# processes behind the Lambda runtime API. Not part of `make test`.
#
# What the emulator does not do is covered by the local stack's tests instead: Lambda's and
# EventBridge's retries, the pipe's bisection, dead-letter queues, IAM enforcement, API
# throttling, reserved concurrency, logs reaching CloudWatch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

FAKECLOUD_VERSION="0.51.0"
TOOLS="$ROOT/.local/tools"
FAKECLOUD="$TOOLS/fakecloud/bin/fakecloud"
STATE="$ROOT/.local/rehearsal"
started="$(date +%s)"
log() { echo "deploy-rehearsal: $*" >&2; }

# The SAM CLI's venv: boto3 and SAM's YAML reader for the driver.
scripts/sam-validate.sh >/dev/null

if [[ ! -x "$FAKECLOUD" || "$(cat "$TOOLS/fakecloud/VERSION" 2>/dev/null)" != "$FAKECLOUD_VERSION" ]]; then
  if ! pkg-config --exists openssl 2>/dev/null; then
    log "fakecloud needs OpenSSL's headers: installing libssl-dev and pkg-config from Debian"
    [[ "$(id -u)" == 0 ]] || { log "run \`apt-get install libssl-dev pkg-config\` as root"; exit 1; }
    apt-get install -y -qq libssl-dev pkg-config >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config >/dev/null; }
  fi
  log "installing fakecloud $FAKECLOUD_VERSION from crates.io into $TOOLS/fakecloud (debug build, ~20 min)"
  cargo install fakecloud --version "$FAKECLOUD_VERSION" --debug --locked --root "$TOOLS/fakecloud"
  echo "$FAKECLOUD_VERSION" >"$TOOLS/fakecloud/VERSION"
fi

# The functions' one bootstrap as this machine runs it (x86_64; the launcher runs it as a process
# per function, with the function's Handler in _HANDLER) and the command that reads the records back.
cargo build --locked -p callhook-lambda -p callhook-cli

rm -rf "$STATE"
mkdir -p "$STATE"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
FAKECLOUD_CONTAINER_CLI="$ROOT/scripts/lambda-launcher.py" \
CALLHOOK_LAUNCHER_STATE="$STATE/launcher" \
  "$FAKECLOUD" --addr "127.0.0.1:$port" --log-level info </dev/null >"$STATE/fakecloud.log" 2>&1 &
emulator=$!
# SIGTERM: the emulator removes every function instance (the launcher's processes) as it stops.
stop() {
  kill "$emulator" 2>/dev/null || true
  wait "$emulator" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/_fakecloud/health" >/dev/null 2>&1 && break
  kill -0 "$emulator" 2>/dev/null || { log "fakecloud exited:"; tail -20 "$STATE/fakecloud.log" >&2; exit 1; }
  sleep 0.5
done
grep -q "Lambda execution enabled" "$STATE/fakecloud.log" \
  || { log "fakecloud did not accept the launcher as its container CLI:"; tail -20 "$STATE/fakecloud.log" >&2; exit 1; }
log "fakecloud $FAKECLOUD_VERSION on 127.0.0.1:$port (log: $STATE/fakecloud.log)"

status=0
CALLHOOK_LAUNCHER_STATE="$STATE/launcher" .venv/bin/python scripts/deploy_rehearsal.py \
  --endpoint "http://127.0.0.1:$port" --bootstraps "$ROOT/target/debug" \
  --callhook "$ROOT/target/debug/callhook" || status=$?
log "done in $(( $(date +%s) - started )) s"
exit "$status"
