#!/usr/bin/env bash
# Tests of the C ABI: builds the crate (release, with the test-only seeded
# RNG), checks the committed header against a fresh cbindgen run, compiles
# the C99 and C++17 flow programs against the staticlib and the cdylib, and
# runs them plain, under valgrind (no error, no leak of any kind) and with
# AddressSanitizer + UndefinedBehaviorSanitizer. Ends with "N passed, M failed".
#
# Needs: cargo, gcc, g++, valgrind (and cbindgen, installed if missing).
set -uo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
root="$(cd ../.. && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
lib="$target/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fixture="$root/tests/data/stored-device-v1.json"

passed=0
failed=0
run() {
  local name="$1"
  shift
  if "$@" >"$work/log" 2>&1; then
    passed=$((passed + 1))
    printf 'ok    %-44s %s\n' "$name" "$(grep -E 'checks passed|up to date|printed' "$work/log" | tail -n 1)"
  else
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$name"
    tail -n 60 "$work/log"
  fi
}

echo "== build (release, feature hazmat-test-vectors for the seeded RNG)"
if ! (cd "$root" && cargo build --release --locked -p session-ratchet-c --features hazmat-test-vectors); then
  echo "0 passed, 1 failed"
  exit 1
fi

echo "== header"
run "header equals a fresh cbindgen run" bash "$here/check-header.sh"

echo "== compile"
# What rustc lists for linking its staticlib on Linux (--print native-static-libs).
native="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cflags="-std=c99 -Wall -Wextra -Werror -pedantic -g -I$here/include"
cxxflags="-std=c++17 -Wall -Wextra -Werror -pedantic -g -I$here/include"
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
hazmat="-DSR_HAZMAT_TEST_VECTORS"
compile() {
  local name="$1"
  shift
  if ! "$@" 2>"$work/cc.log"; then
    failed=$((failed + 1))
    printf 'FAIL  compile %s\n' "$name"
    cat "$work/cc.log"
  fi
}
# shellcheck disable=SC2086 # the flag lists split on purpose
{
  compile c-static gcc $cflags $hazmat tests/flow.c "$lib/libsession_ratchet_c.a" $native -o "$work/c-static"
  # Against the shared library, and without the hazmat define: the header
  # must stand on its own, and the seeded-RNG part of the test is skipped.
  compile c-shared gcc $cflags tests/flow.c -L"$lib" -lsession_ratchet_c -Wl,-rpath,"$lib" -o "$work/c-shared"
  compile c-asan gcc $cflags $hazmat $san tests/flow.c "$lib/libsession_ratchet_c.a" $native -o "$work/c-asan"
  compile cpp-static g++ $cxxflags tests/flow.cpp "$lib/libsession_ratchet_c.a" $native -o "$work/cpp-static"
  compile cpp-shared g++ $cxxflags tests/flow.cpp -L"$lib" -lsession_ratchet_c -Wl,-rpath,"$lib" -o "$work/cpp-shared"
  compile cpp-asan g++ $cxxflags $san tests/flow.cpp "$lib/libsession_ratchet_c.a" $native -o "$work/cpp-asan"
}

# The README's first example, so it cannot rot.
awk '/^## A first message/ {on = 1} on && /^```c$/ {code = 1; next} code && /^```$/ {exit} code' README.md >"$work/readme.c"
compile readme-example gcc $cflags "$work/readme.c" "$lib/libsession_ratchet_c.a" -lpthread -ldl -lm -o "$work/readme"

echo "== run"
export SR_TEST_QUIET=1
vg=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all --show-leak-kinds=all -q)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
readme_prints() { [ "$("$work/readme")" = "hi Bob" ] && echo "README example printed: hi Bob"; }
[ -x "$work/readme" ] && run "README example (C99, staticlib)" readme_prints
[ -x "$work/c-static" ] && run "C99, staticlib" "$work/c-static" "$fixture"
[ -x "$work/c-shared" ] && run "C99, cdylib" "$work/c-shared" "$fixture"
[ -x "$work/c-shared" ] && run "C99, cdylib, valgrind" "${vg[@]}" "$work/c-shared" "$fixture"
[ -x "$work/c-static" ] && run "C99, staticlib, valgrind" "${vg[@]}" "$work/c-static" "$fixture"
[ -x "$work/c-asan" ] && run "C99, staticlib, ASan+UBSan" "$work/c-asan" "$fixture"
[ -x "$work/cpp-static" ] && run "C++17, staticlib" "$work/cpp-static"
[ -x "$work/cpp-shared" ] && run "C++17, cdylib, valgrind" "${vg[@]}" "$work/cpp-shared"
[ -x "$work/cpp-static" ] && run "C++17, staticlib, valgrind" "${vg[@]}" "$work/cpp-static"
[ -x "$work/cpp-asan" ] && run "C++17, staticlib, ASan+UBSan" "$work/cpp-asan"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
