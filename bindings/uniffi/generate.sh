#!/usr/bin/env bash
# Generates the Kotlin and Swift sources from the release cdylib with this
# crate's pinned uniffi-bindgen, into OUT_DIR/kotlin and OUT_DIR/swift
# (default: bindings/uniffi/generated, the committed copy). Build first:
#   cargo build --release --locked -p session-ratchet-uniffi
# No formatter runs (--no-format), so the output is the same everywhere.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="${1:-generated}"
case "$(uname -s)" in
  Darwin) lib="$target/release/libsession_ratchet_uniffi.dylib" ;;
  *) lib="$target/release/libsession_ratchet_uniffi.so" ;;
esac
bindgen="$target/release/uniffi-bindgen"
for f in "$lib" "$bindgen"; do
  [ -f "$f" ] || { echo "generate: $f not found; run: cargo build --release --locked -p session-ratchet-uniffi" >&2; exit 1; }
done
rm -rf "$out/kotlin" "$out/swift"
for lang in kotlin swift; do
  "$bindgen" generate --library "$lib" --language "$lang" --out-dir "$out/$lang" --no-format
done
