"""Side-by-side encoder benchmark of PyTorch and ONNX Runtime on a Switchboard model directory.

Run by scripts/bench-peers.sh inside its virtual environment. Same texts, prefix, pooling and
thread count as Switchboard's `cargo bench --bench encoder`: single-message p50/p99
(tokenizer + encoder + mean pooling + L2), batch-of-64 throughput, and the cosine of each
engine's embeddings to PyTorch f32. Prints one JSON object per engine on stdout.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from tokenizers import Tokenizer
from transformers import AutoModel

BATCH = 64


def load_texts(paths):
    texts = []
    for p in paths:
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                texts.extend(json.loads(line)["text"] for line in f if line.strip())
    return texts


class Encoder:
    """Tokenizer + a forward function returning last hidden states as numpy."""

    def __init__(self, model_dir, forward, max_len=256):
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(max_len)
        cfg_path = os.path.join(model_dir, "config_sentence_transformers.json")
        self.prefix = ""
        if os.path.exists(cfg_path):
            cfg = json.load(open(cfg_path))
            name = cfg.get("default_prompt_name")
            if name:
                self.prefix = cfg.get("prompts", {}).get(name, "")
        self.pad = json.load(open(os.path.join(model_dir, "config.json"))).get("pad_token_id", 0)
        self.forward = forward

    def embed(self, texts):
        encs = self.tok.encode_batch([self.prefix + t for t in texts])
        n = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), n), self.pad, dtype=np.int64)
        mask = np.zeros((len(encs), n), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        hidden = self.forward(ids, mask)
        m = mask[:, :, None].astype(np.float32)
        mean = (hidden * m).sum(1) / np.maximum(m.sum(1), 1.0)
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def measure(name, enc, single_texts, batch_sets, rounds, reference=None):
    for t in single_texts[:10]:
        enc.embed([t])
    times = []
    for _ in range(rounds):
        for t in single_texts:
            start = time.perf_counter()
            enc.embed([t])
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    pct = lambda q: times[min(len(times) - 1, int(q * (len(times) - 1) + 0.5))]
    out = {"engine": name, "single_p50_ms": pct(0.5), "single_p99_ms": pct(0.99)}
    for set_name, texts in batch_sets:
        # Grouped by length like Switchboard's own batching, so padding stays small.
        ordered = sorted(texts, key=len)
        enc.embed(ordered[:BATCH])
        start = time.perf_counter()
        for i in range(0, len(ordered), BATCH):
            enc.embed(ordered[i : i + BATCH])
        out[f"batch_{set_name}_per_s"] = len(ordered) / (time.perf_counter() - start)
    emb = np.concatenate([enc.embed(single_texts[i : i + BATCH]) for i in range(0, len(single_texts), BATCH)])
    if reference is not None:
        cos = (emb * reference).sum(1)
        out["cosine_to_f32_min"] = float(cos.min())
        out["cosine_to_f32_mean"] = float(cos.mean())
    print(json.dumps(out), flush=True)
    return emb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--work-dir", required=True, help="where the ONNX exports go")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--texts", nargs="+", required=True, help="JSONL files of single-message texts")
    ap.add_argument("--batch-texts", default="", help="JSONL file of a second batch set")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    single = load_texts(args.texts)
    batch_sets = [("product", single)]
    extra = load_texts([args.batch_texts]) if args.batch_texts else []
    if extra:
        batch_sets.append(("banking77", extra))

    model = AutoModel.from_pretrained(args.model_dir, torch_dtype=torch.float32).eval()

    def torch_forward(ids, mask):
        with torch.inference_mode():
            out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        return out.last_hidden_state.numpy()

    ref = measure(f"PyTorch {torch.__version__.split('+')[0]} f32", Encoder(args.model_dir, torch_forward),
                  single, batch_sets, args.rounds)

    os.makedirs(args.work_dir, exist_ok=True)
    f32_path = os.path.join(args.work_dir, "model.onnx")
    int8_path = os.path.join(args.work_dir, "model-int8.onnx")
    if not os.path.exists(int8_path):
        class LastHidden(torch.nn.Module):
            """Positional (input_ids, attention_mask) -> last hidden state, for the exporter."""

            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask):
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        ids = torch.ones((1, 8), dtype=torch.int64)
        torch.onnx.export(
            LastHidden(model),
            (ids, torch.ones_like(ids)),
            f32_path,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"},
                          "last_hidden_state": {0: "b", 1: "t"}},
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(f32_path, int8_path, weight_type=QuantType.QInt8)
    del model

    for label, path in [("f32", f32_path), ("dynamic int8", int8_path)]:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

        def ort_forward(ids, mask, sess=sess):
            return sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0]

        measure(f"ONNX Runtime {ort.__version__} {label}", Encoder(args.model_dir, ort_forward),
                single, batch_sets, args.rounds, reference=ref)


if __name__ == "__main__":
    sys.exit(main())
