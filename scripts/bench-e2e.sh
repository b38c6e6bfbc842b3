#!/usr/bin/env bash
# End to end on this machine: starts `switchboard serve` on a fresh embedded store (model and
# head already prepared by a first run), reports start-up time to /readyz, drives it with
# `switchboard loadtest` (shoppers posting to /api/v1/messages), and reports the server's RSS.
# Usage: scripts/bench-e2e.sh [loadtest flags...]   (default: --concurrency 32 --duration 20)
# Environment: THREADS (classifier threads, default 2), PORT (default 18080), SB (a switchboard
# binary to measure instead of building this checkout's, e.g. to compare two builds), ROUNDS
# (load tests run back to back on the same server, default 1: shows whether throughput holds
# as the stored conversations and the human queue grow).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
if [ -z "${SB:-}" ]; then
  cargo build --release --locked >&2
  SB="$CARGO_TARGET_DIR/release/switchboard"
fi
PORT="${PORT:-18080}"
DATA="$(mktemp -d)"
# Prepare model and head once (a no-op when they are current), so start-up is a restart.
"$SB" classify "warm-up" >/dev/null
start_ns=$(date +%s%N)
RAYON_NUM_THREADS="${THREADS:-2}" "$SB" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" \
  > "$DATA/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
until curl -sf "localhost:$PORT/readyz" >/dev/null; do
  kill -0 $PID 2>/dev/null || { cat "$DATA/serve.log" >&2; exit 1; }
  sleep 0.05
done
echo "start-up to ready: $(( ($(date +%s%N) - start_ns) / 1000000 )) ms"
echo "RSS when ready: $(awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status) MB"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--concurrency 32 --duration 20)
for _ in $(seq 1 "${ROUNDS:-1}"); do
  "$SB" loadtest --url "http://127.0.0.1:$PORT" "${args[@]}"
done
echo "RSS after load: $(awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status) MB (peak $(awk '/VmHWM/ {print int($2/1024)}' /proc/$PID/status) MB)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
