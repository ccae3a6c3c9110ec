#!/usr/bin/env bash
# Installs the third-party OpAMP peers used by the opamp-interop tests, pinned:
#   interop/.venv         Python: opentelemetry-opamp-client 0.5b0 (requirements.txt)
#   interop/node_modules  npm: @elastic/opamp-client-node 0.5.0, @elastic/mockopampserver 0.5.0
#                         (package.json + package-lock.json)
# Idempotent: a stamp holding the hash of the pin file skips work already done.
# Usage: bash interop/setup.sh
set -euo pipefail
cd "$(dirname "$0")"

hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# --- Python ---------------------------------------------------------------
py_stamp=.venv/.opamp-interop-stamp
py_hash=$(hash_of requirements.txt)
if [[ -x .venv/bin/python && -f $py_stamp && $(cat "$py_stamp") == "$py_hash" ]]; then
    echo "interop/setup.sh: Python peer already installed"
else
    echo "interop/setup.sh: installing the Python peer into interop/.venv"
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    .venv/bin/python -c 'import opentelemetry._opamp.agent'
    echo "$py_hash" > "$py_stamp"
fi

# --- Node -----------------------------------------------------------------
node_stamp=node_modules/.opamp-interop-stamp
node_hash=$(hash_of package.json package-lock.json)
if [[ -f $node_stamp && $(cat "$node_stamp") == "$node_hash" ]]; then
    echo "interop/setup.sh: Node peers already installed"
else
    echo "interop/setup.sh: installing the Node peers into interop/node_modules"
    # No install scripts: the only one (dtrace-provider, optional for bunyan) is not needed.
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    node -e 'require("@elastic/opamp-client-node"); require("@elastic/mockopampserver")'
    echo "$node_hash" > "$node_stamp"
fi
