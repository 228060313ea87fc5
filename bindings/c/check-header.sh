#!/usr/bin/env bash
# Checks that include/session_ratchet.h is what cbindgen generates from the
# source now (the header is committed). `--write` regenerates it instead.
# Installs the pinned cbindgen if it is missing.
set -euo pipefail
cd "$(dirname "$0")"
CBINDGEN_VERSION=0.29.2

if [ "$(cbindgen --version 2>/dev/null || true)" != "cbindgen $CBINDGEN_VERSION" ]; then
  echo "installing cbindgen $CBINDGEN_VERSION"
  cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet
fi

fresh="$(mktemp)"
trap 'rm -f "$fresh"' EXIT
cbindgen --quiet --config cbindgen.toml --crate session-ratchet-c --output "$fresh" .

if [ "${1:-}" = "--write" ]; then
  cp "$fresh" include/session_ratchet.h
  echo "wrote include/session_ratchet.h"
elif diff -u include/session_ratchet.h "$fresh"; then
  echo "header up to date: include/session_ratchet.h"
else
  echo "include/session_ratchet.h differs from a fresh cbindgen run: run bash bindings/c/check-header.sh --write and commit it" >&2
  exit 1
fi
