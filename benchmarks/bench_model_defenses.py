"""STRIP against ART 1.20.1's STRIP on the same model and inputs, the throughput bound of N
batched forward passes per input, and Neural Cleanse's time per model.

Model: R1's CNN trained 3 epochs on BadNets-poisoned MNIST (600 poisons, target 7).
Inputs: 2,000 clean test digits to fit (ours: 1,000 overlay pool + 1,000 references; ART: all
2,000 as its validation set), then 1,000 clean + 1,000 triggered test digits to score.
Both with N = 100 overlays and a 1% clean rejection rate.

ART's NeuralCleanse is Keras-only, so Neural Cleanse is timed alone.

Run:  .venv/bin/python benchmarks/bench_model_defenses.py   (needs '.[bench]')
Writes benchmarks/results/model_defenses.json and prints a Markdown table.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from common import environment, poisoned_mnist_model, write_json

from poisonlab.defenses.inference import STRIP
from poisonlab.defenses.model import NeuralCleanse

N = 100


def forward_bound(module, X: np.ndarray, n: int) -> tuple[float, int]:
    """Seconds for n * N forward passes at the fastest batch size (of 100, 256, 1024, 6400):
    what any STRIP must at least spend. Returns (seconds, batch size)."""
    reps = torch.as_tensor(np.repeat(X[:n], N, axis=0), dtype=torch.float32)
    module.eval()
    best = (np.inf, 0)
    for batch in (100, 256, 1024, 6400):
        t = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(reps), batch):
                torch.softmax(module(reps[i:i + batch]), dim=1)
        best = min(best, (time.perf_counter() - t, batch))
    return best


def art_strip(module, X_fit, X_eval):
    from art.defences.transformer.poisoning import STRIP as ArtSTRIP
    from art.estimators.classification import PyTorchClassifier

    probs_model = torch.nn.Sequential(copy.deepcopy(module), torch.nn.Softmax(dim=1))  # ART needs probabilities
    clf = PyTorchClassifier(model=probs_model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                            nb_classes=10, clip_values=(0.0, 1.0))
    defence = ArtSTRIP(clf)(num_samples=N, false_acceptance_rate=0.01)
    t = time.perf_counter()
    defence.mitigate(X_fit)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = defence.predict(X_eval)
    score_s = time.perf_counter() - t
    return (np.abs(pred).sum(axis=1) == 0), fit_s, score_s  # ART abstains with an all-zero row


def main() -> None:
    clf, atk, test = poisoned_mnist_model()
    module = clf.module_
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(test))
    X_fit = test.X[idx[:2000]]
    clean = test.X[idx[2000:3000]]
    trig_src = idx[3000:][test.y[idx[3000:]] != 7][:1000]
    trig = atk.apply_trigger(test.X[trig_src])
    X_eval = np.r_[clean, trig]
    is_trig = np.r_[np.zeros(len(clean), bool), np.ones(len(trig), bool)]
    torch.set_num_threads(torch.get_num_threads())

    t = time.perf_counter()
    ours = STRIP(n_overlays=N, false_positive_rate=0.01, random_state=0).fit(X_fit, model=clf)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    flags = ours.flag(X_eval)
    score_s = time.perf_counter() - t
    art_flags, art_fit_s, art_score_s = art_strip(module, X_fit, X_eval)
    bound_s, bound_batch = forward_bound(module, X_eval, len(X_eval))

    def rates(f):
        return {"FAR": float((~f[is_trig]).mean()), "FRR": float(f[~is_trig].mean())}

    res = {
        "ours": {**rates(flags), "fit_seconds": fit_s, "score_seconds": score_s,
                 "inputs_per_second": len(X_eval) / score_s},
        "art": {**rates(art_flags), "fit_seconds": art_fit_s, "score_seconds": art_score_s,
                "inputs_per_second": len(X_eval) / art_score_s},
        "bound": {"seconds": bound_s, "inputs_per_second": len(X_eval) / bound_s, "batch_size": bound_batch},
    }
    res["throughput_ratio_ours_over_art"] = res["ours"]["inputs_per_second"] / res["art"]["inputs_per_second"]
    res["ours_fraction_of_bound"] = res["ours"]["inputs_per_second"] / res["bound"]["inputs_per_second"]

    t = time.perf_counter()
    nc = NeuralCleanse(epochs=20, random_state=0).fit(test.X[idx[:500]], model=clf)
    res["neural_cleanse"] = {"seconds_all_10_classes": time.perf_counter() - t,
                             "flagged": np.flatnonzero(nc.flags_).tolist(),
                             "anomaly_index": nc.scores_.tolist(), "l1_norms": nc.l1_norms_.tolist()}
    res["setting"] = __doc__.split("\n\n")[1]
    res["environment"] = environment()
    path = write_json("model_defenses.json", res)
    print("| STRIP | FAR | FRR | fit s | score s | inputs/s |\n|---|---|---|---|---|---|")
    for k in ("ours", "art"):
        m = res[k]
        print(f"| {k} | {m['FAR']:.2%} | {m['FRR']:.2%} | {m['fit_seconds']:.1f} | {m['score_seconds']:.1f} | "
              f"{m['inputs_per_second']:.0f} |")
    print(f"| bound (N forward passes) | | | | {bound_s:.1f} | {res['bound']['inputs_per_second']:.0f} |")
    print(f"\nthroughput ours/ART: {res['throughput_ratio_ours_over_art']:.1f}x; ours at "
          f"{res['ours_fraction_of_bound']:.0%} of the bound")
    print(f"Neural Cleanse, 10 classes: {res['neural_cleanse']['seconds_all_10_classes']:.0f} s, flagged "
          f"{res['neural_cleanse']['flagged']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
