#!/usr/bin/env bash
# Reproduces the capacity table in README.md: `switchboard simulate` on generated arrivals
# (the policy's [simulation] mix) for several agent counts and seeds, policy order vs FIFO.
# Prints, per agent count and order, the worst within-SLA share over seeds 1-5 and the
# longest wait (whole minutes) for VIP and regular customers.
# Usage: scripts/capacity.sh [RATE_PER_HOUR] [HOURS] [AGENTS...]   (defaults: 40 8 4 5 6 7)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
cargo build --release --locked >&2
SB="$CARGO_TARGET_DIR/release/switchboard"
rate="${1:-40}"
hours="${2:-8}"
shift $(( $# > 2 ? 2 : $# ))
agents=("$@")
[ ${#agents[@]} -gt 0 ] || agents=(4 5 6 7)
seeds=(1 2 3 4 5)
echo "| agents | order | VIP within SLA (worst seed) | VIP max wait (min) | regular within SLA (worst seed) | regular max wait (min) |"
echo "|---|---|---|---|---|---|"
for n in "${agents[@]}"; do
  for order in policy fifo; do
    for s in "${seeds[@]}"; do
      "$SB" simulate --rate "$rate" --hours "$hours" --seed "$s" --agents "$n" --order "$order" --json
    done | jq -rs --arg n "$n" --arg o "$order" '
      "| \($n) | \($o) | \(map(.tiers.vip.within_sla) | min * 100 | floor)% | \(map(.tiers.vip.max_wait_s) | max / 60 | floor)"
      + " | \(map(.tiers.regular.within_sla) | min * 100 | floor)% | \(map(.tiers.regular.max_wait_s) | max / 60 | floor) |"'
  done
done
