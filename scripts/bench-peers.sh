#!/usr/bin/env bash
# Side by side, one after the other on the same texts, model directory and thread count:
# Switchboard's encoder, PyTorch (transformers) and ONNX Runtime (f32 and dynamic int8, both
# exported here from the same weights). Prints single-message p50/p99, batch-of-64 throughput
# and cosine to f32 for each, then a Markdown table.
# Usage: scripts/bench-peers.sh [model-dir-name]   (default multilingual-e5-small)
# Environment: THREADS (default 2), ROUNDS (default 5), PEERS_VENV (default
# ~/.cache/switchboard/peers-venv; created and filled from PyPI on first use, outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-multilingual-e5-small}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-5}"
VENV="${PEERS_VENV:-$HOME/.cache/switchboard/peers-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
[ -f "models/$MODEL/config.json" ] || cargo run --release --locked -- models fetch "$MODEL" >&2

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, transformers, onnxruntime, onnx" 2>/dev/null; then
  echo "== installing PyTorch, transformers, ONNX Runtime into $VENV (once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q torch==2.15.0 transformers==5.24.0 onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2 >&2
fi

cargo build --release --locked --benches >&2
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
BANKING=../shared/eval-data/banking77/test.jsonl

echo "== Switchboard ($MODEL, $THREADS threads)" >&2
ENCODER="$MODEL" RAYON_NUM_THREADS="$THREADS" ROUNDS="$ROUNDS" JSON=1 \
  cargo bench --locked --bench encoder 2>/dev/null | grep '^{' | tee "$OUT/results.jsonl"

echo "== PyTorch and ONNX Runtime ($MODEL, $THREADS threads)" >&2
OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" TOKENIZERS_PARALLELISM=false \
  "$VENV/bin/python" scripts/bench_peers.py --model-dir "models/$MODEL" \
  --work-dir "$HOME/.cache/switchboard/peers-onnx/$MODEL" --threads "$THREADS" --rounds "$ROUNDS" \
  --texts tests/fixtures/product_intents.jsonl tests/fixtures/out_of_scope.jsonl \
  $( [ -f "$BANKING" ] && echo --batch-texts "$BANKING" ) 2> "$OUT/python.log" \
  | tee -a "$OUT/results.jsonl" || { cat "$OUT/python.log" >&2; exit 1; }

python3 - "$OUT/results.jsonl" "$MODEL" "$THREADS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"\n{sys.argv[2]}, {sys.argv[3]} threads, {len(rows)} engines one after the other\n")
print("| engine | single message p50 / p99 ms | batch of 64, product / banking77 sentences/s | cosine to f32 min / mean |")
print("|---|---|---|---|")
for r in rows:
    b = " / ".join(f"{r[k]:.0f}" for k in ("batch_product_per_s", "batch_banking77_per_s") if k in r)
    c = f"{r['cosine_to_f32_min']:.4f} / {r['cosine_to_f32_mean']:.4f}" if "cosine_to_f32_min" in r else "f32 (reference)"
    print(f"| {r['engine']} | {r['single_p50_ms']:.2f} / {r['single_p99_ms']:.2f} | {b} | {c} |")
PY
