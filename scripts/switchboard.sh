#!/usr/bin/env bash
# Runs the built `switchboard` binary (building it first when needed) with any arguments, e.g.
# `./scripts/switchboard.sh sign-customer c-2001`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
if [ ! -x "$CARGO_TARGET_DIR/release/switchboard" ]; then
  cargo build --release --locked >&2
fi
exec "$CARGO_TARGET_DIR/release/switchboard" "$@"
