#!/usr/bin/env bash
# Tests of the JavaScript/TypeScript bindings: builds the crate in release
# for wasm32-unknown-unknown (linted by clippy on the way), runs wasm-bindgen into pkg/ (nodejs, bundler
# and web packages, with TypeScript declarations), reports the .wasm size
# (and after wasm-opt -Oz), then runs the node --test suite in tests/; its
# summary (# pass N, # fail 0) is the last output.
#
#   bash bindings/wasm/run-tests.sh [--bench]
#
# --bench first times one same-chain message through the binding against
# the Rust Device and the raw ratchet::Session (bindings/reference) and
# prints the ratios.
#
# Needs: cargo with the wasm32-unknown-unknown target, node >= 20 and npm.
# Installed if missing: the wasm-bindgen CLI at the version Cargo.lock gives
# the wasm-bindgen crate, and this directory's pinned npm tools (npm ci).
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bench=0
[ "${1:-}" = "--bench" ] && bench=1

# What clients ship: one optimised unit (smaller and a little faster). Both
# sides of the --bench comparison are built this way.
export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

# The CLI must be the exact version of the macro crate the module was built with.
wb_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")"
if [ -z "$wb_version" ]; then
  echo "no wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }')" != "$wb_version" ]; then
  echo "== installing wasm-bindgen-cli $wb_version"
  # Without default features: they only add TLS for the test runner's
  # browser downloads. The CLI's own lock file first; if the registry
  # cannot serve a version it names, its dependencies resolved afresh.
  cargo install wasm-bindgen-cli --version "$wb_version" --locked --no-default-features \
    || cargo install wasm-bindgen-cli --version "$wb_version" --no-default-features
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "node 20 or later is needed, found $(node --version)" >&2
  exit 1
fi
# The pinned tools, unless node_modules already holds exactly those versions.
pinned='const d = require("./package.json").devDependencies;
  for (const [n, v] of Object.entries(d)) if (require(`./node_modules/${n}/package.json`).version !== v) process.exit(1);'
if ! node -e "$pinned" 2>/dev/null; then
  echo "== npm ci (typescript, binaryen)"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "== build (release, wasm32-unknown-unknown, linted by clippy with -D warnings)"
# Cargo runs clippy-driver in place of rustc on the workspace crates it
# compiles (this one and the core), so the build is also
# `cargo clippy --target wasm32-unknown-unknown -- -D warnings`, for free.
if command -v clippy-driver >/dev/null; then
  export RUSTC_WORKSPACE_WRAPPER=clippy-driver
else
  echo "(clippy-driver not found: building without the lint)"
fi
(cd "$root" && CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-D warnings" \
  cargo build --locked --release -p session-ratchet-wasm --target wasm32-unknown-unknown)
unset RUSTC_WORKSPACE_WRAPPER
wasm="$target/wasm32-unknown-unknown/release/session_ratchet_wasm.wasm"

echo "== wasm-bindgen $wb_version"
version="$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)"
rm -rf pkg/nodejs pkg/bundler pkg/web pkg/readme
for t in nodejs bundler web; do
  wasm-bindgen --target "$t" --out-dir "pkg/$t" "$wasm"
done
manifest() { # directory, then extra JSON members
  printf '{\n  "name": "session-ratchet-wasm",\n  "version": "%s",\n  "license": "MIT OR Apache-2.0",\n  "main": "session_ratchet_wasm.js",\n  "types": "session_ratchet_wasm.d.ts"%s\n}\n' \
    "$version" "$2" >"pkg/$1/package.json"
}
manifest nodejs ''
manifest bundler ',
  "type": "module",
  "module": "session_ratchet_wasm.js",
  "sideEffects": ["./session_ratchet_wasm.js", "./snippets/*"]'
manifest web ',
  "type": "module"'

size() { wc -c <"$1" | tr -d ' '; }
gz() { gzip -9 -c "$1" | wc -c | tr -d ' '; }
bg="pkg/nodejs/session_ratchet_wasm_bg.wasm"
echo "size: $(size "$bg") bytes .wasm after wasm-bindgen ($(gz "$bg") gzipped)"
if node_modules/.bin/wasm-opt -Oz "$bg" -o pkg/size-oz.wasm 2>/dev/null; then
  echo "size: $(size pkg/size-oz.wasm) bytes after wasm-opt -Oz ($(gz pkg/size-oz.wasm) gzipped; binaryen $(node -p 'require("./node_modules/binaryen/package.json").version'))"
  rm -f pkg/size-oz.wasm
fi

if [ "$bench" = 1 ]; then
  echo "== overhead: one same-chain message, binding against Rust"
  (cd "$root" && cargo build --locked --release -p session-ratchet-reference --bin same-chain)
  rust="$("$target/release/same-chain" 60 50)"
  js="$(node bench/same-chain.mjs 60 50)"
  echo "$rust"
  echo "$js"
  r="$(echo "$rust" | awk '/^device:/ { print $3 }')"
  raw="$(echo "$rust" | awk '/^session:/ { print $3 }')"
  j="$(echo "$js" | awk '/MemoryStore/ { print $6 * 1000 }')"
  awk -v j="$j" -v r="$r" -v s="$raw" 'BEGIN {
    printf "ratio (binding over MemoryStore / Rust Device): %.2fx; / raw Session: %.1fx\n", j / r, j / s }'
fi

echo "== node --test"
exec node --test --test-reporter=tap tests/*.test.mjs
