#!/usr/bin/env bash
# Fuzzing with cargo fuzz (libFuzzer) on the pure core: verification, each provider's parser,
# and the merge (fuzz/src/lib.rs says what each target checks).
#
# Usage:
#   scripts/fuzz.sh smoke                 every target briefly, 60 s in all (make test runs this)
#   scripts/fuzz.sh run [SECONDS] [TARGET...]
#                                         the long run: each target for SECONDS (default 600)
#
# Prints one line per target: executions, corpus size, and the verdict. With
# CALLHOOK_FUZZ_REPORT=FILE each line is also appended there as JSON.
#
# cargo fuzz passes nightly-only flags to rustc; this machine has only the stable toolchain, so
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them. The sanitizer is off: callhook forbids unsafe
# code, so AddressSanitizer could only find what Rust's own checks already stop; panics, failed
# assertions and arithmetic overflow (debug assertions are on) are what the targets look for.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_FUZZ_VERSION="0.13.2"
TOOLS="$ROOT/.local/tools"
PROVIDERS=(vox clawops synthflow retell vapi bland elevenlabs twilio telnyx)
TARGETS=(verify "${PROVIDERS[@]/#/parse_}" merge)
export RUSTC_BOOTSTRAP=1

install() {
  if [[ "$("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null || true)" != *"$CARGO_FUZZ_VERSION"* ]]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS" >&2
    cargo install --quiet --locked --root "$TOOLS" "cargo-fuzz@$CARGO_FUZZ_VERSION"
  fi
}

# The corpus starts from the fixtures (the providers' own examples) and the inputs that once
# failed (fuzz/regressions/<target>/) on every run.
seed() {
  local corpus="$ROOT/target/fuzz/corpus"
  mkdir -p "$corpus"/{verify,merge}
  local provider
  for provider in "${PROVIDERS[@]}"; do mkdir -p "$corpus/parse_$provider"; done
  local dir
  for dir in fuzz/regressions/*/; do
    cp "$dir"* "$corpus/$(basename "$dir")/"
  done
  local f i=0
  for provider in vox clawops synthflow; do
    for f in tests/fixtures/"$provider"/*.json; do
      cp "$f" "$corpus/parse_$provider/$(basename "$f")"
      printf 'sha256=00\000' | cat - "$f" >"$corpus/verify/$provider-$(basename "$f")"
    done
    # A selector byte (0 vox, 1 clawops, 2 synthflow), then the provider's bodies split by 0xFF.
    {
      printf "\\x0$i"
      local first=1
      for f in tests/fixtures/"$provider"/*.json; do
        [[ $first == 1 ]] || printf '\xff'
        first=0
        cat "$f"
      done
    } >"$corpus/merge/$provider"
    i=$((i + 1))
  done
  # The later providers' parsers, from their fixtures (JSON, and Twilio's forms).
  for provider in "${PROVIDERS[@]:3}"; do
    for f in tests/fixtures/"$provider"/*.json tests/fixtures/"$provider"/*.form; do
      if [[ -f "$f" ]]; then cp "$f" "$corpus/parse_$provider/$(basename "$f")"; fi
    done
  done
}

run_target() {
  local target="$1" seconds="$2" log
  log="$(mktemp)"
  local status=0
  (cd fuzz && "$TOOLS/bin/cargo-fuzz" run --sanitizer none --target-dir "$ROOT/target/fuzz/build" \
      "$target" "$ROOT/target/fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$ROOT/target/fuzz/artifacts/$target-" \
      >"$log" 2>&1) || status=$?
  local execs corpus
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  corpus="$(find "$ROOT/target/fuzz/corpus/$target" -type f | wc -l)"
  local verdict="ok"
  if [[ $status != 0 ]]; then
    verdict="FAILED"
    tail -n 40 "$log" >&2
  fi
  echo "fuzz: $target: ${execs:-0} executions in ${seconds}s, corpus $corpus, $verdict"
  if [[ -n "${CALLHOOK_FUZZ_REPORT:-}" ]]; then
    printf '{"target":"%s","seconds":%s,"executions":%s,"corpus":%s,"verdict":"%s"}\n' \
      "$target" "$seconds" "${execs:-0}" "$corpus" "$verdict" >>"$CALLHOOK_FUZZ_REPORT"
  fi
  rm -f "$log"
  return "$status"
}

main() {
  local mode="${1:-}"
  shift || true
  local seconds targets
  case "$mode" in
    # 60 s in all: the parsers of the later providers share what one target had.
    smoke) seconds=5; targets=("${TARGETS[@]}") ;;
    run)
      seconds="${1:-600}"
      shift || true
      if [[ $# -gt 0 ]]; then targets=("$@"); else targets=("${TARGETS[@]}"); fi
      ;;
    *) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  install
  mkdir -p "$ROOT/target/fuzz/artifacts"
  seed
  # Build every target first, so the time budget is spent fuzzing.
  (cd fuzz && "$TOOLS/bin/cargo-fuzz" build --sanitizer none --target-dir "$ROOT/target/fuzz/build" >&2)
  local failed=0 target
  for target in "${targets[@]}"; do
    run_target "$target" "$seconds" || failed=1
  done
  return "$failed"
}

main "$@"
