#!/usr/bin/env bash
# The queue's load run (`switchboard loadtest`: shoppers, every 5th asking for a person, and
# agents claiming, replying and resolving) against three set-ups, one after another, each on
# fresh data: one instance on SQLite, one instance on PostgreSQL, two instances on one
# PostgreSQL database (the load spread over both, round-robin). Prints each report.
# Usage: scripts/loadtest-backends.sh [SECONDS] [SHOPPERS] [AGENTS]
# Needs PostgreSQL at $PGURL (default postgres://postgres@127.0.0.1:5432, trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}" SHOPPERS="${2:-16}" AGENTS="${3:-4}"
PGURL="${PGURL:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
cargo build --release --locked --quiet
BIN="$CARGO_TARGET_DIR/release/switchboard"
export SWITCHBOARD_ADMIN_TOKEN=loadtest-admin-0123456789 SWITCHBOARD_IDENTITY_SECRET=loadtest-identity-0123456789
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

start() { # PORT DATA_DIR [extra args]
  local port="$1" dir="$2"; shift 2
  "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" "$@" >"$dir.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "server on $port did not become ready; see $dir.log" >&2; exit 1
}
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
run() { # LABEL URLS
  echo "== $1"
  "$BIN" loadtest --url "$2" --concurrency "$SHOPPERS" --agents "$AGENTS" --handoff-every 5 \
    --duration "$DURATION"
}

start 18081 "$WORK/sqlite"
run "SQLite, one instance" http://127.0.0.1:18081
stop_all

DB="switchboard_load_$$"
psql "$PGURL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
trap 'cleanup; psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT
start 18082 "$WORK/pg-one" --database-url "$PGURL/$DB"
run "PostgreSQL, one instance" http://127.0.0.1:18082
stop_all
psql "$PGURL/postgres" -qc "DROP DATABASE $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
start 18083 "$WORK/pg-a" --database-url "$PGURL/$DB"
start 18084 "$WORK/pg-b" --database-url "$PGURL/$DB"
run "PostgreSQL, two instances" http://127.0.0.1:18083,http://127.0.0.1:18084
