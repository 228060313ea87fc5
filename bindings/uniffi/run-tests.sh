#!/usr/bin/env bash
# Tests of the Kotlin and Swift bindings (UniFFI):
#   1. builds the crate in release (the cdylib, uniffi-bindgen) and the Rust
#      reference (bindings/reference: the same-chain binary);
#   2. generates the Kotlin and Swift sources afresh and fails if they differ
#      from the committed ones in generated/ (regenerate with generate.sh);
#   3. compiles the generated Kotlin with tests/kotlin/ and runs the flow test
#      against the cdylib through JNA;
#   4. measures one same-chain message through Kotlin/JNA against the Rust
#      Device and the raw ratchet::Session (bindings/reference, run just
#      before), and prints the ratios (goal <= 1.5x the Device).
# Swift is generated and compared, not compiled (no Swift toolchain here).
# Ends with "N passed, M failed"; exits non-zero on any failure.
#
# Needs cargo. Installs what is missing: JNA (Debian libjna-java,
# /usr/share/java/jna.jar), a JDK and npm (Debian openjdk-17-jdk-headless,
# npm), and the Kotlin compiler (npm kotlin-compiler, pinned below, into
# bindings/uniffi/.tools/, ignored by git).
set -uo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
root="$(cd ../.. && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
lib="$target/release"
KOTLIN_COMPILER_VERSION="2.4.20"
tools="$here/.tools"
kotlin_home="$tools/node_modules/kotlin-compiler"
kotlinc="$kotlin_home/bin/kotlinc-jvm"
jna=/usr/share/java/jna.jar
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
ok() {
  passed=$((passed + 1))
  printf 'ok    %s\n' "$1"
}
fail() {
  failed=$((failed + 1))
  printf 'FAIL  %s\n' "$1"
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

echo "== tools"
apt_packages=()
[ -f "$jna" ] || apt_packages+=(libjna-java)
command -v java >/dev/null || apt_packages+=(openjdk-17-jdk-headless)
command -v npm >/dev/null || apt_packages+=(npm)
if [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "installing ${apt_packages[*]} (apt)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"; } >"$work/apt.log" 2>&1; then
    cat "$work/apt.log"
    fail "apt-get install ${apt_packages[*]}"
    finish
  fi
fi
if [ ! -x "$kotlinc" ] || [ "$(cat "$kotlin_home/build.txt" 2>/dev/null)" != "$KOTLIN_COMPILER_VERSION" ]; then
  echo "installing kotlin-compiler $KOTLIN_COMPILER_VERSION (npm) into $(basename "$tools")/"
  mkdir -p "$tools"
  if ! npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error \
    "kotlin-compiler@$KOTLIN_COMPILER_VERSION" >"$work/npm.log" 2>&1; then
    cat "$work/npm.log"
    fail "install kotlin-compiler"
    finish
  fi
fi
java -version 2>&1 | head -n 1
echo "kotlinc $(cat "$kotlin_home/build.txt"), $(basename "$(readlink -f "$jna")")"

echo "== build (release)"
if ! (cd "$root" && cargo build --release --locked -p session-ratchet-uniffi --lib --bin uniffi-bindgen &&
  cargo build --release --locked -p session-ratchet-reference --bin same-chain); then
  fail "cargo build"
  finish
fi

echo "== generated sources"
if bash "$here/generate.sh" "$work/gen" >"$work/gen.log" 2>&1; then
  if diff -ru "$here/generated" "$work/gen" >"$work/gen.diff"; then
    ok "generated Kotlin and Swift equal a fresh uniffi-bindgen run"
  else
    head -n 40 "$work/gen.diff"
    fail "generated/ differs from a fresh generation: run bindings/uniffi/generate.sh and commit"
  fi
else
  cat "$work/gen.log"
  fail "uniffi-bindgen"
  finish
fi

echo "== Kotlin"
# The fresh generation is what is compiled, so the tests check the library
# as built even when the committed copy is stale (reported above).
# README.md's Kotlin example is compiled and run too (ReadmeKt).
awk '/^```kotlin$/ { on = 1; next } /^```$/ { if (on) exit } on' "$here/README.md" >"$work/Readme.kt"
if ! "$kotlinc" -nowarn -cp "$jna" -include-runtime -d "$work/tests.jar" \
  "$work/gen/kotlin/org/sessionratchet/session_ratchet_uniffi.kt" "$here"/tests/kotlin/*.kt \
  "$work/Readme.kt" >"$work/kotlinc.log" 2>&1; then
  cat "$work/kotlinc.log"
  fail "kotlinc"
  finish
fi
jvm=(java -Djna.library.path="$lib" -cp "$work/tests.jar:$jna")
SR_TEST_QUIET=1 "${jvm[@]}" org.sessionratchet.tests.FlowTest "$root/tests/data/stored-device-v1.json" >"$work/flow.log" 2>&1
status=$?
cat "$work/flow.log"
summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$work/flow.log" | tail -n 1)"
if [ -n "$summary" ]; then
  read -r p _ f _ <<<"$summary"
  passed=$((passed + p))
  failed=$((failed + f))
fi
if [ "$status" -ne 0 ] && [ -z "$summary" ]; then
  fail "Kotlin flow test exited with $status"
elif [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
  fail "Kotlin flow test exited with $status"
fi

if "${jvm[@]}" ReadmeKt >"$work/readme.log" 2>&1 &&
  grep -qx "Bob got: hi Bob" "$work/readme.log" && grep -qx "Alice got: hi Alice" "$work/readme.log" &&
  grep -q "^a duplicate: " "$work/readme.log"; then
  ok "README.md's Kotlin example runs"
else
  cat "$work/readme.log"
  fail "README.md's Kotlin example"
fi

echo "== overhead: one same-chain message, Kotlin/JNA vs the Rust Device and the raw Session"
batches="${SR_OVERHEAD_BATCHES:-300}"
per_batch="${SR_OVERHEAD_PER_BATCH:-20}"
if "$lib/same-chain" "$batches" "$per_batch" >"$work/rust.txt" &&
  "${jvm[@]}" org.sessionratchet.tests.Overhead "$batches" "$per_batch" >"$work/kotlin.txt"; then
  cat "$work/rust.txt" "$work/kotlin.txt"
  rust_ns="$(awk '/^device:/ {print $3}' "$work/rust.txt")"
  raw_ns="$(awk '/^session:/ {print $3}' "$work/rust.txt")"
  kotlin_ns="$(awk '{print $3}' "$work/kotlin.txt")"
  ratio="$(awk -v k="$kotlin_ns" -v r="$rust_ns" 'BEGIN { printf "%.2f", k / r }')"
  raw_ratio="$(awk -v k="$kotlin_ns" -v r="$raw_ns" 'BEGIN { printf "%.1f", k / r }')"
  note=""
  if awk -v x="$ratio" 'BEGIN { exit !(x > 1.5) }'; then
    note=" (above the 1.5x goal; timing only, not a failure)"
  fi
  ok "overhead measured: Kotlin/JNA p10 / Rust Device p10 = ${ratio}x$note; / raw Session p10 = ${raw_ratio}x"
else
  fail "overhead measurement"
fi

finish
