#!/usr/bin/env bash
# Prints the .text size of the session-ratchet rlib in DIR, and of every
# rlib in DIR together (the core with its dependencies): the sum of the
# .text* sections of their objects, before linking (a linked image drops
# what it never calls, so these are upper bounds).
#   bash .ci/text-size.sh target/thumbv7em-none-eabihf/release/deps
set -euo pipefail
dir="$1"
size_tool="$(command -v llvm-size || command -v size)"
text() { "$size_tool" -A "$@" 2>/dev/null | awk '$1 ~ /^\.text/ { s += $2 } END { print s + 0 }'; }
# The newest, should a reused target directory hold an older build too.
core="$(ls -t "$dir"/libsession_ratchet-*.rlib | head -n 1)"
printf '.text: core %s bytes; core with dependencies %s bytes\n' "$(text "$core")" "$(text "$dir"/*.rlib)"
