#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then runs every test.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium and its WebDriver for the dashboard's browser test (Debian packages).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "== installing chromium and chromium-driver"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# Peers for the interoperability tests (a Python virtual environment and node_modules, pinned).
if [ -f interop/setup.sh ]; then
  echo "== installing interop peers"
  bash interop/setup.sh
fi

echo "== cargo test (workspace, all features)"
cargo test --workspace --all-features

echo "== fuzz targets type-check"
cargo check --manifest-path fuzz/Cargo.toml --bins

echo "== benchmarks, each run once in test mode"
cargo test --workspace --all-features --benches
