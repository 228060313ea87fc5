#!/usr/bin/env bash
# Fuzz smoke test: builds the cargo-fuzz crate in fuzz/ and runs every target
# for FUZZ_SECONDS seconds (default 30) from its committed seed corpus.
# Fails on any crash, panic, leak or timeout a target reports.
#
#   FUZZ_SECONDS=30        time per target
#   FUZZ_TARGETS="a b"     only these targets (default: all in fuzz/fuzz_targets)
#   FUZZ_TARGET_DIR=dir    cargo target directory (default: fuzz/target)
#   FUZZ_SANITIZER=address address (default) or none
#   FUZZ_PARALLEL=n        targets run at once (default: number of CPUs)
#
# Needs a nightly toolchain (installed with rustup if missing; falls back to
# RUSTC_BOOTSTRAP=1 on the default toolchain if that fails) and cargo-fuzz
# (installed if missing). New inputs go to a temporary directory, never into
# the committed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${FUZZ_SECONDS:-30}"
TARGET_DIR="${FUZZ_TARGET_DIR:-fuzz/target}"
SANITIZER="${FUZZ_SANITIZER:-address}"
CARGO_FUZZ_VERSION="0.13.2"

if rustup run nightly rustc --version >/dev/null 2>&1 \
  || rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
  FUZZ=(cargo +nightly fuzz)
else
  echo "fuzz-smoke: no nightly toolchain; using RUSTC_BOOTSTRAP=1 on the default one" >&2
  export RUSTC_BOOTSTRAP=1
  FUZZ=(cargo fuzz)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

"${FUZZ[@]}" build --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One target: its verdict goes to $work/$t.status, its output to $work/$t.log.
fuzz_one() {
  local t="$1"
  mkdir -p "$work/$t"
  if "${FUZZ[@]}" run --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR" "$t" \
      "$work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$SECS" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
      >"$work/$t.log" 2>&1; then
    echo ok >"$work/$t.status"
  else
    echo failed >"$work/$t.status"
  fi
}

# Targets run PARALLEL at a time (default: the number of CPUs), each for
# the full FUZZ_SECONDS, so the smoke run takes ~targets/PARALLEL × SECS.
parallel="${FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 1)}"
running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

status=0
for t in "${targets[@]}"; do
  echo "=== fuzz $t (${SECS}s)"
  if [ "$(cat "$work/$t.status" 2>/dev/null)" = ok ]; then
    grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs|stat::number_of_executed_units)' "$work/$t.log" || true
  else
    status=1
    echo "fuzz-smoke: target $t FAILED; last output:" >&2
    tail -n 60 "$work/$t.log" >&2
    ls -l "fuzz/artifacts/$t" >&2 2>/dev/null || true
  fi
done
exit "$status"
