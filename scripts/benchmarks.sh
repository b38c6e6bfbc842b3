#!/usr/bin/env bash
# Reproduces the classifier numbers in README.md: `switchboard eval` on the public benchmarks
# in ../shared/eval-data and on a held-out split of the product's own training data.
# Usage: scripts/benchmarks.sh [set ...]   (sets: product banking77 banking77-minilm clinc150 hwu64 smp2017)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
cargo build --release --locked >&2
SB="$CARGO_TARGET_DIR/release/switchboard"
DATA="${EVAL_DATA:-../shared/eval-data}"
OUT="${BENCH_OUT:-target-bench}"
mkdir -p "$OUT"
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(product banking77 clinc150 hwu64 smp2017 banking77-minilm)

run() {
  local name=$1; shift
  echo "== $name: switchboard eval $*" >&2
  "$SB" eval --json "$@" > "$OUT/$name.json"
  python3 - "$name" "$OUT/$name.json" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
pct = lambda x: "-" if x is None else f"{100*x:.2f}"
print(f"| {name} | {d['encoder']} | {pct(d['accuracy'])} | {pct(d['macro_f1'])} | {pct(d.get('in_scope_accuracy'))} | {pct(d.get('oos_recall'))} | {d['train_seconds']:.0f} | {d['latency_p50_ms']:.1f} / {d['latency_p99_ms']:.1f} |")
PY
}

echo "| set | encoder | accuracy % | macro-F1 % | in-scope acc % | OOS recall % | train s | latency p50 / p99 ms |"
echo "|---|---|---|---|---|---|---|---|"
for s in "${sets[@]}"; do
  case "$s" in
    product) run product --train training-data --holdout 0.2 ;;
    banking77) run banking77 --train "$DATA/banking77/train.jsonl" --test "$DATA/banking77/test.jsonl" ;;
    banking77-minilm) run banking77-minilm --encoder all-minilm-l6-v2 --train "$DATA/banking77/train.jsonl" --test "$DATA/banking77/test.jsonl" ;;
    clinc150) run clinc150 --train "$DATA/clinc150/train.jsonl" --val "$DATA/clinc150/val.jsonl" --test "$DATA/clinc150/test.jsonl" ;;
    hwu64) run hwu64 --train "$DATA/hwu64/train.jsonl" --holdout 0.2 ;;
    smp2017) run smp2017 --train "$DATA/smp2017/train.jsonl" --holdout 0.2 ;;
    *) echo "unknown set $s" >&2; exit 2 ;;
  esac
done
