"""Data-stage detectors against ART 1.20.1 on the same features of poisoned MNIST (60,000).

Part 1 -- quality and speed, side by side, in one run:
  * our SpectralSignatures vs ART's SpectralSignatureDefense (both remove 1.5 epsilon per class);
  * our ActivationClustering vs ART's ActivationDefence (2-means on 10 FastICA dims; ART's
    default "smaller" analysis and its "relative-size" one).
  ART reads activations through its PyTorchClassifier; we hand it a model whose only layer is the
  identity on our features, so both tools see exactly the same numbers.
Part 2 -- every detector of poisonlab on 60,000 x 512 features, time per detector.
Part 3 -- total time of all detectors on 15k / 30k / 60k samples (should grow about linearly).

Run:  .venv/bin/python benchmarks/bench_data_detectors.py   (needs `pip install -c constraints.txt '.[bench]'`)
Writes benchmarks/results/data_detectors.json and prints a Markdown table.
"""

from __future__ import annotations

import time

import numpy as np

from common import environment, poisoned_mnist_features, write_json

from poisonlab.defenses.data import ActivationClustering, SpectralSignatures
from poisonlab.evaluation.detection import auroc, precision_recall_f1


#: Not timed here: the combiner (it runs the others) and subset_disagreement (it trains ten
#: models; benchmarks/bench_partition* time the ensembles).
SKIP = ("combined", "subset_disagreement")


def art_classifier(d: int, n_classes: int):
    import torch
    from art.estimators.classification import PyTorchClassifier

    model = torch.nn.Sequential(torch.nn.Identity())
    return PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(d,),
                             nb_classes=n_classes)


def timed(fn, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def part1(F, y, mask) -> dict:
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense

    n_classes = int(y.max()) + 1
    onehot = np.eye(n_classes)[y]
    eps = mask.sum() / (y == 7).sum()  # poisoned fraction of the target class
    rows = {}

    # --- spectral signatures
    # the paper's removal rule (1.5 epsilon per class) as ART's eps_multiplier=1.5; the global AUROC
    # is of the default scores (per_class shifts each class by its cut, ranks within a class kept)
    ours, t_ours = timed(lambda: SpectralSignatures(contamination=float(eps), threshold_rule="per_class").fit(F, y),
                         repeat=3)
    ours_flags = ours.flags_
    ours_scores = SpectralSignatures().fit(F, y).scores_
    art = SpectralSignatureDefense(art_classifier(F.shape[1], n_classes), F, onehot,
                                   expected_pp_poison=float(eps), eps_multiplier=1.5, batch_size=1024)
    (report, is_clean), t_art = timed(lambda: art.detect_poison(), repeat=3)
    art_flags = np.asarray(is_clean) == 0
    art_scores = np.zeros(len(y))
    for c in range(n_classes):  # ART's own per-class scoring function, for AUROC
        idx = np.flatnonzero(y == c)
        art_scores[idx] = SpectralSignatureDefense.spectral_signature_scores(F[idx]).ravel()
    t7 = y == 7
    rows["spectral"] = {
        "ours": {**precision_recall_f1(ours_flags, mask), "auroc": auroc(ours_scores, mask),
                 "auroc_target_class": auroc(ours_scores[t7], mask[t7]), "seconds": t_ours},
        "art": {**precision_recall_f1(art_flags, mask), "auroc": auroc(art_scores, mask),
                "auroc_target_class": auroc(art_scores[t7], mask[t7]), "seconds": t_art},
    }

    # --- activation clustering
    ac, t_ac = timed(lambda: ActivationClustering(random_state=0).fit(F, y), repeat=3)
    rows["activation_clustering"] = {"ours": {**precision_recall_f1(ac.flags_, mask),
                                              "auroc": auroc(ac.scores_, mask), "seconds": t_ac,
                                              "classes_flagged": [c for c, r in ac.class_report_.items() if r["poisoned"]]}}
    for analysis in ("smaller", "relative-size"):
        defence = ActivationDefence(art_classifier(F.shape[1], n_classes), F, onehot)
        try:
            (rep, is_clean), t = timed(lambda: defence.detect_poison(
                nb_clusters=2, nb_dims=10, reduce="FastICA", cluster_analysis=analysis), repeat=3)
        except Exception as exc:  # noqa: BLE001 - record a peer's crash, do not hide it
            rows["activation_clustering"][f"art ({analysis})"] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        flags = np.asarray(is_clean) == 0
        rows["activation_clustering"][f"art ({analysis})"] = {
            **precision_recall_f1(flags, mask), "auroc": auroc(flags.astype(float), mask), "seconds": t}
    return rows


def part2(F512, y512, mask512) -> dict:
    from poisonlab import registry

    out = {}
    for name, cls in registry.available("detector").items():
        if cls.unit != "sample" or name in SKIP:
            continue
        det = cls()
        t = time.perf_counter()
        det.fit(F512, y512)
        dt = time.perf_counter() - t
        out[name] = {"seconds": dt, **precision_recall_f1(det.flags_, mask512), "auroc": auroc(det.scores_, mask512)}
    return out


def part3_scaling(F512, y512) -> dict:
    """Total time of every detector on the first n samples, n = 15k, 30k, 60k."""
    from poisonlab import registry

    out = {}
    for n in (15_000, 30_000, 60_000):
        t = time.perf_counter()
        for name, cls in registry.available("detector").items():
            if cls.unit == "sample" and name not in SKIP:
                cls().fit(F512[:n], y512[:n])
        out[str(n)] = time.perf_counter() - t
    out["ratio_60k_over_15k"] = out["60000"] / out["15000"]
    return out


def main() -> None:
    F, y, mask, meta = poisoned_mnist_features(hidden=128)
    print(f"features {F.shape}, {int(mask.sum())} poisons ({meta})")
    p1 = part1(F, y, mask)
    F5, y5, m5, meta5 = poisoned_mnist_features(hidden=512)
    print(f"features {F5.shape} ({meta5})")
    p2 = part2(F5, y5, m5)
    p3 = part3_scaling(F5, y5)
    result = {"part3_scaling_seconds": p3, "setting": "BadNets 3x3 square -> 7, 600 of 60,000 MNIST training digits; R1's CNN trained 3 "
                         "epochs; penultimate features (128-d for part 1, 512-d for part 2)",
              "part1_vs_art": p1, "part2_all_detectors_60000x512": p2, "environment": environment()}
    path = write_json("data_detectors.json", result)
    print("\n| detector | tool | precision | recall | F1 | AUROC | AUROC (target class) | seconds | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for det, tools in p1.items():
        ours_t = tools["ours"]["seconds"]
        for tool, m in tools.items():
            if "error" in m:
                print(f"| {det} | {tool} | crashed: {m['error'][:90]} |||||||")
                continue
            speed = f"{m['seconds'] / ours_t:.1f}x" if tool != "ours" else "1x"
            print(f"| {det} | {tool} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['auroc']:.3f} | "
                  f"{m.get('auroc_target_class', float('nan')):.3f} | {m['seconds']:.2f} | {speed} |")
    print("\n| detector (60,000 x 512) | seconds | recall | precision | AUROC |\n|---|---|---|---|---|")
    for name, m in p2.items():
        print(f"| {name} | {m['seconds']:.2f} | {m['recall']:.3f} | {m['precision']:.3f} | {m['auroc']:.3f} |")
    print("\nscaling (all detectors, 512-d): " + ", ".join(f"{k}: {v:.1f}" for k, v in p3.items()))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
