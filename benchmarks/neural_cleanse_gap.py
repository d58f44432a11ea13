"""Neural Cleanse's decision with and without the gap test, on every model the false-positive
benchmark recorded.

``benchmarks/bench_neural_cleanse.py`` stores each model's reversed mask norms (``l1_norms``) and
whether the reversal was conclusive. The decision is a pure function of those
(:func:`~poisonlab.defenses.model.neural_cleanse.anomaly_index`,
:func:`~poisonlab.defenses.model.neural_cleanse.mask_gap`,
:func:`~poisonlab.defenses.model.neural_cleanse.confirmed_index`), and the reversal itself is the
same with either rule, so this script applies both rules to the recorded norms: the paper's
(anomaly index > 2) and the default (index > 2 and a mask ``MIN_GAP`` times smaller than every
other class's). A clean model is a false positive when any class is flagged; a backdoored one is
detected when its target is flagged ("alone" when nothing else is).

    .venv/bin/python benchmarks/neural_cleanse_gap.py

Reads benchmarks/results/neural_cleanse_fpr.json; writes benchmarks/results/neural_cleanse_gap.json.
"""

from __future__ import annotations

import json

import numpy as np

from common import ROOT, environment, write_json

from poisonlab.defenses.model.neural_cleanse import (
    INDEX_THRESHOLD,
    MIN_GAP,
    anomaly_index,
    confirmed_index,
    mask_gap,
)

TARGET = 0  # the benchmark's BadNets target


def decide(norms: np.ndarray, conclusive: bool) -> dict:
    idx, gap = anomaly_index(norms), mask_gap(norms)
    paper = np.flatnonzero(idx > INDEX_THRESHOLD).tolist() if conclusive else []
    gated = np.flatnonzero(confirmed_index(idx, gap, MIN_GAP) > INDEX_THRESHOLD).tolist() if conclusive else []
    smallest = int(np.argmin(norms))
    return {"paper": paper, "with_gap": gated, "max_index": float(idx.max()),
            "gap_of_smallest": float(gap[smallest]), "smallest_class": smallest}


def main() -> None:
    src = ROOT / "benchmarks" / "results" / "neural_cleanse_fpr.json"
    data = json.loads(src.read_text())
    rows, summary = [], {}
    for m in data["models"]:
        nc = m["neural_cleanse"]
        d = decide(np.asarray(nc["l1_norms"], dtype=np.float64), bool(nc["conclusive"]))
        kind = "clean" if m["attack"] is None else m["attack"]
        rows.append({"dataset": m["dataset"], "seed": m["seed"], "model": kind, **d})
        s = summary.setdefault(f"{m['dataset']} {kind}", {"n": 0, "paper": 0, "with_gap": 0,
                                                         "paper_alone": 0, "with_gap_alone": 0})
        s["n"] += 1
        for rule in ("paper", "with_gap"):
            if kind == "clean":
                s[rule] += bool(d[rule])
            else:
                s[rule] += TARGET in d[rule]
                s[rule + "_alone"] += d[rule] == [TARGET]
    print(f"min_gap {MIN_GAP}; clean: models with any class flagged; backdoored: target flagged (alone)")
    print("| models | n | paper's rule | with the gap test |")
    print("|---|---|---|---|")
    for k, s in summary.items():
        if k.endswith("clean"):
            print(f"| {k} | {s['n']} | {s['paper']} flagged | {s['with_gap']} flagged |")
        else:
            print(f"| {k} | {s['n']} | {s['paper']} ({s['paper_alone']} alone) | "
                  f"{s['with_gap']} ({s['with_gap_alone']} alone) |")
    for r in rows:
        print(f"  {r['dataset']:<14} seed {r['seed']} {r['model']:<8} paper {r['paper']!s:<8} with gap "
              f"{r['with_gap']!s:<6} max index {r['max_index']:.2f}, smallest class {r['smallest_class']} "
              f"{r['gap_of_smallest']:.2f}x below the next")
    out = {"source": "benchmarks/results/neural_cleanse_fpr.json", "min_gap": MIN_GAP,
           "index_threshold": INDEX_THRESHOLD, "summary": summary, "models": rows,
           "source_environment": data.get("environment"),
           "command": "benchmarks/neural_cleanse_gap.py", "environment": environment()}
    print(f"wrote {write_json('neural_cleanse_gap.json', out)}")


if __name__ == "__main__":
    main()
