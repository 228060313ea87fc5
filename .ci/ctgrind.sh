#!/usr/bin/env bash
# Constant-time checks under Valgrind memcheck (tests/ctgrind.rs).
# Fails if the real checks report any secret-dependent branch or address, or
# if the positive control (a comparison that branches on a secret) is NOT
# reported. Builds in release mode, as clients do: debug assertions in
# dependencies branch on secrets by design and are not compiled in releases.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq valgrind) >/dev/null
  fi
fi
command -v valgrind >/dev/null || { echo "ctgrind: valgrind is not installed" >&2; exit 1; }

bin="$(cargo test --locked --release --test ctgrind --no-run 2>&1 \
  | tee -a /dev/stderr | sed -n 's/^ *Executable tests\/ctgrind.rs (\(.*\))$/\1/p' | tail -n 1)"
[ -x "$bin" ] || { echo "ctgrind: test binary not found" >&2; exit 1; }

VG=(valgrind --tool=memcheck --error-exitcode=42 --num-callers=30
    --suppressions=.ci/ctgrind.supp --track-origins=yes)

echo "=== ctgrind: constant-time checks (must report nothing)"
"${VG[@]}" "$bin" --test-threads=1 --exact constant_time_checks

echo "=== ctgrind: positive control (must be reported)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
"${VG[@]}" "$bin" --test-threads=1 --exact positive_control_leaky_comparison >"$log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 42 ] || ! grep -q 'depends on uninitialised value' "$log"; then
  cat "$log" >&2
  echo "ctgrind: the positive control was NOT flagged (exit $rc): the harness is blind" >&2
  exit 1
fi
grep -m1 -A1 'depends on uninitialised value' "$log"
echo "ctgrind: ok (checks clean, control flagged)"
