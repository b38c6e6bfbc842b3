#!/usr/bin/env python3
"""Chooses the knowledge base's fusion weights on the validation questions.

Reads the dump of `switchboard eval-kb --dump FILE` (every question's unweighted score parts for
every passage of its language), then searches the weights coordinate by coordinate for the best
validation top-1 passage accuracy (ties: MRR). Prints the validation
and test metrics of the weights in use and of the chosen ones, and the chosen weights in the
form `--weights` takes. The test half is reported, never used to choose.

Usage: scripts/kb_weights.py DUMP.json [--rounds N]
"""
import argparse
import json

GRID = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0]


def metrics(questions, w):
    top1 = top3 = mrr = 0.0
    n = 0
    for q in questions:
        if not q["accepted"]:
            continue
        n += 1
        scored = sorted(
            ((sum(a * b for a, b in zip(parts, w)), key) for key, parts in q["parts"].items()),
            key=lambda x: -x[0],
        )
        rank = next((i + 1 for i, (_, k) in enumerate(scored) if k in q["accepted"]), None)
        if rank:
            top1 += rank == 1
            top3 += rank <= 3
            mrr += 1.0 / rank
    return top1 / n, top3 / n, mrr / n


def fmt(m):
    return f"top1 {100 * m[0]:.1f}%  top3 {100 * m[1]:.1f}%  MRR {m[2]:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    doc = json.load(open(args.dump))
    names = doc["part_names"]
    start = list(doc["weights"])
    val = [q for q in doc["questions"] if q["split"] == "val"]
    test = [q for q in doc["questions"] if q["split"] == "test"]
    print("in use ", start)
    print("  val  ", fmt(metrics(val, start)))
    print("  test ", fmt(metrics(test, start)))
    w = list(start)
    best = metrics(val, w)
    for _ in range(args.rounds):
        changed = False
        for i in range(len(w)):
            for g in GRID:
                trial = w[:i] + [g] + w[i + 1:]
                m = metrics(val, trial)
                if (m[0], m[2]) > (best[0], best[2]):
                    best, w, changed = m, trial, True
        if not changed:
            break
    print("chosen ", dict(zip(names, w)))
    print("  val  ", fmt(best))
    print("  test ", fmt(metrics(test, w)))
    print("--weights " + ",".join(f"{x:g}" for x in w))


if __name__ == "__main__":
    main()
