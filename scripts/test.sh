#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then runs every test.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo-nextest is optional; plain `cargo test` is what runs here so nothing extra is needed.
echo "== cargo test (workspace, all features)"
cargo test --workspace --all-features --locked

echo "== fuzz targets type-check"
cargo check --manifest-path fuzz/Cargo.toml --bins

echo "== benches compile"
cargo bench --workspace --no-run --locked
