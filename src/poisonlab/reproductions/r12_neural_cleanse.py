"""R12: Neural Cleanse (Wang et al. 2019) on R1's poisoned model and on its clean model.

Threat model: the defender holds a finished model and some clean data, and asks whether any
class has an unusually small trigger that sends everything to it. R1's two models come from the
run layer's cache (:func:`~.r01_badnets_mnist.r1_cell`).
"""

from __future__ import annotations

import time

import numpy as np

from .common import RunContext, mean_std
from .r01_badnets_mnist import r1_cell

ID = "R12"
TITLE = "Neural Cleanse on R1's model and on a clean model"
SETTING = ("R1's poisoned and clean models; 500 clean test digits; up to 100 epochs, each class "
           "stopped early by the reference implementation's rule; MAD anomaly index (1.4826); all "
           "10 classes optimised together")
PAPER = "infected models > 2 (official example 3.65), clean models < 2"
TARGET = "infected: the target class alone > 2; clean: no class > 2"
#: Expected CPU minutes per seed on one thread (6.0 min for 3 seeds, with R1's models cached).
MINUTES = 2.0
DATA = ("mnist",)


def run(seed: int, ctx: RunContext) -> dict:
    from ..defenses.model import NeuralCleanse

    cell = r1_cell(seed, ctx, clean=True)
    test = cell.splits.test
    out = {}
    for label in ("poisoned", "clean"):
        t0 = time.perf_counter()
        nc = NeuralCleanse(random_state=seed).fit(test.X[:500], model=cell.models[label])
        out["infected" if label == "poisoned" else "clean"] = {
            "l1_norms": nc.l1_norms_.tolist(), "anomaly_index": nc.anomaly_index_.tolist(),
            "epochs_run": nc.epochs_run_.tolist(),
            "flagged": np.flatnonzero(nc.flags_).tolist(), "seconds": time.perf_counter() - t0}
    return out


def summarize(runs: list[dict]) -> dict:
    infected_ok = all(r["infected"]["flagged"] == [7] for r in runs)
    clean_ok = all(not r["clean"]["flagged"] for r in runs)
    idx7 = mean_std([r["infected"]["anomaly_index"][7] for r in runs])
    max_clean = mean_std([max(r["clean"]["anomaly_index"]) for r in runs])
    secs = mean_std([r["infected"]["seconds"] for r in runs])
    return {"measured": {"infected target index": {"mean": idx7["mean"], "std": idx7["std"], "n": idx7["n"]},
                         "clean model max index": max_clean, "seconds per model": secs},
            "passed": infected_ok and clean_ok,
            "verdict": f"infected: flagged {[r['infected']['flagged'] for r in runs]} (index of 7: "
                       f"{idx7['mean']:.2f}); clean: flagged {[r['clean']['flagged'] for r in runs]} "
                       f"(max index {max_clean['mean']:.2f}); {secs['mean']:.0f} s per model"}
