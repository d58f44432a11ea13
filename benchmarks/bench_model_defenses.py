"""STRIP against ART 1.20.1's STRIP on the same model and inputs, the throughput bound of N
batched forward passes per input, and Neural Cleanse's time per model.

Model: R1's CNN trained 3 epochs on BadNets-poisoned MNIST (600 poisons, target 7).
Inputs: 2,000 clean test digits to fit (ours: 1,000 overlay pool + 1,000 references; ART: all
2,000 as its validation set), then 1,000 clean + 1,000 triggered test digits to score.
Both with N = 100 overlays and a 1% clean rejection rate. Ours runs twice: the paper's N overlays
for every input, and sequentially (early_stop = 4 standard errors, rounds of 10 overlays), which
stops for inputs that are clearly clean or clearly triggered; its decisions are compared with the
full run's.

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


def forward_bound(module, X: np.ndarray, n: int) -> dict:
    """Seconds for n * N forward passes (and softmax) at the fastest batch size (of 100, 256,
    1024, 6400), with the model's weights in the ordinary (NCHW) memory layout and in
    channels-last (what poisonlab's STRIP scores with): what any STRIP that runs N overlays per
    input must at least spend with that model on this machine."""
    reps = torch.as_tensor(np.repeat(X[:n], N, axis=0), dtype=torch.float32)
    out = {}
    for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        model = copy.deepcopy(module).eval().to(memory_format=fmt)
        best = (np.inf, 0)
        for batch in (100, 256, 1024, 6400):
            t = time.perf_counter()
            with torch.no_grad():
                for i in range(0, len(reps), batch):
                    torch.softmax(model(reps[i:i + batch]), dim=1)
            best = min(best, (time.perf_counter() - t, batch))
        out[layout] = {"seconds": best[0], "inputs_per_second": n / best[0], "batch_size": best[1]}
    return out


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
    ours.set_params(early_stop=4.0, round_overlays=10)  # the same fitted threshold, sequential scoring
    t = time.perf_counter()
    seq_scores, used = ours.score(X_eval, return_overlays=True)
    seq_s = time.perf_counter() - t
    seq_flags = seq_scores > ours.threshold_
    art_flags, art_fit_s, art_score_s = art_strip(module, X_fit, X_eval)
    bounds = forward_bound(module, X_eval, len(X_eval))
    bound = min(bounds.values(), key=lambda b: b["seconds"])

    def rates(f):
        return {"FAR": float((~f[is_trig]).mean()), "FRR": float(f[~is_trig].mean())}

    res = {
        "ours": {**rates(flags), "fit_seconds": fit_s, "score_seconds": score_s,
                 "inputs_per_second": len(X_eval) / score_s},
        "art": {**rates(art_flags), "fit_seconds": art_fit_s, "score_seconds": art_score_s,
                "inputs_per_second": len(X_eval) / art_score_s},
        "ours_sequential": {**rates(seq_flags), "score_seconds": seq_s,
                            "inputs_per_second": len(X_eval) / seq_s,
                            "mean_overlays": float(used.mean()),
                            "mean_overlays_clean": float(used[~is_trig].mean()),
                            "mean_overlays_triggered": float(used[is_trig].mean()),
                            "decisions_equal_to_full_run": float((seq_flags == flags).mean())},
        "bound": bound, "bound_by_layout": bounds,
    }
    res["throughput_ratio_ours_over_art"] = res["ours"]["inputs_per_second"] / res["art"]["inputs_per_second"]
    res["ours_fraction_of_bound"] = res["ours"]["inputs_per_second"] / res["bound"]["inputs_per_second"]
    res["throughput_ratio_sequential_over_art"] = (res["ours_sequential"]["inputs_per_second"]
                                                   / res["art"]["inputs_per_second"])

    t = time.perf_counter()
    nc = NeuralCleanse(epochs=20, random_state=0).fit(test.X[idx[:500]], model=clf)
    res["neural_cleanse"] = {"seconds_all_10_classes": time.perf_counter() - t,
                             "flagged": np.flatnonzero(nc.flags_).tolist(),
                             "anomaly_index": nc.scores_.tolist(), "l1_norms": nc.l1_norms_.tolist()}
    res["setting"] = __doc__.split("\n\n")[1]
    res["environment"] = environment()
    path = write_json("model_defenses.json", res)
    print("| STRIP | FAR | FRR | fit s | score s | inputs/s |\n|---|---|---|---|---|---|")
    for k in ("ours", "ours_sequential", "art"):
        m = res[k]
        print(f"| {k} | {m['FAR']:.2%} | {m['FRR']:.2%} | {m.get('fit_seconds', float('nan')):.1f} | "
              f"{m['score_seconds']:.1f} | {m['inputs_per_second']:.0f} |")
    for layout, b in bounds.items():
        print(f"| bound (N forward passes, {layout}) | | | | {b['seconds']:.1f} | {b['inputs_per_second']:.0f} |")
    print(f"\nthroughput ours/ART: {res['throughput_ratio_ours_over_art']:.1f}x; ours at "
          f"{res['ours_fraction_of_bound']:.0%} of the bound")
    q = res["ours_sequential"]
    print(f"sequential: {res['throughput_ratio_sequential_over_art']:.1f}x ART, {q['mean_overlays']:.1f} overlays "
          f"per input (clean {q['mean_overlays_clean']:.1f}, triggered {q['mean_overlays_triggered']:.1f}), "
          f"decisions equal to the full run's on {q['decisions_equal_to_full_run']:.2%} of inputs")
    print(f"Neural Cleanse, 10 classes: {res['neural_cleanse']['seconds_all_10_classes']:.0f} s, flagged "
          f"{res['neural_cleanse']['flagged']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
