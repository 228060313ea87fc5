#!/usr/bin/env bash
# Miri (undefined-behaviour interpreter) over the pure-logic unit tests: the
# wire codec, strict bencode, the erasure code, and ratchet message framing
# and padding (including the never-panics property tests, with few cases).
# Crypto-heavy tests are skipped: interpreting X25519/ML-KEM takes hours.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal --component miri,rust-src
fi
rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 || true

# Isolation off: proptest reads the clock and its regression files.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
export PROPTEST_CASES="${PROPTEST_CASES:-4}"
cargo +nightly miri test --locked --lib -- wire:: bencode:: erasure:: padding_pure::
