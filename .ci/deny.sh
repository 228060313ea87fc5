#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (.ci/deny.toml), over the core crate
# and every binding of the workspace: licences, bans
# (duplicate versions, wildcards), sources, and advisories from the offline
# RustSec database that ../shared/tools/advisory-db provides.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION="0.20.2"
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION"
fi

tool=../shared/tools/advisory-db
[ -x "$tool" ] || { echo "deny: $tool not found (needed for offline advisories)" >&2; exit 1; }
db="$("$tool")"

# cargo metadata needs every platform's crates on disk before going offline.
cargo fetch --locked >/dev/null

cfg="$(mktemp -d)/deny.toml"
trap 'rm -rf "$(dirname "$cfg")"' EXIT
sed "s|^db-path = .*|db-path = \"$db\"|" .ci/deny.toml >"$cfg"
cargo deny --offline --locked --all-features --workspace --config "$cfg" check
