"""R19: confident learning (Northcutt et al. 2021) against class-conditional label flips.

Threat model: labels are corrupted by a class-conditional noise matrix (here pair flips
c -> c+1, :func:`~poisonlab.attacks.data.label_noise.class_conditional_flip`); inputs are
clean. The defender finds the flipped labels with
:class:`~poisonlab.defenses.data.LabelIssues` (cleanlab on out-of-fold probabilities) and trains
on what is left.
"""

from __future__ import annotations

import numpy as np

from .common import RunContext, mean_std

ID = "R19"
TITLE = "Confident learning against class-conditional label flips"
SETTING = ("digits (1797) and MNIST (first 20,000 training digits), 20% / 40% of each class "
           "flipped c -> c+1; cleanlab on 5-fold out-of-fold logistic-regression probabilities; "
           "accuracy of (standardise, PCA-64, logistic regression) on the clean test set, trained on noisy "
           "vs pruned labels")
PAPER = "CL beats no cleaning (CIFAR-10 40% noise: 86.7 vs 60.2, Northcutt et al. 2021)"
TARGET = "recall >= 0.85 of flipped labels at 20%; accuracy after pruning > accuracy without"
#: Expected CPU minutes per seed on one thread (1.0 min for 3 seeds).
MINUTES = 0.3
DATA = ("digits", "mnist")

R19_RATES = (0.2, 0.4)
R19_MNIST_SIZE = 20_000


def run(seed: int, ctx: RunContext) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..attacks.data.label_noise import class_conditional_flip
    from ..data import load_digits
    from ..defenses.data import LabelIssues

    rng = np.random.default_rng(seed)
    d = load_digits(split_seed=seed)
    train, _, test = ctx.mnist()
    n = min(R19_MNIST_SIZE, len(train))
    sets = {"digits": (d.train.X.reshape(len(d.train), -1), d.train.y, d.test.X.reshape(len(d.test), -1), d.test.y),
            "mnist": (train.X[:n].reshape(n, -1), train.y[:n], test.X.reshape(len(test), -1), test.y)}
    settings = {}
    for name, (X, y, Xt, yt) in sets.items():
        for rate in R19_RATES:
            y_noisy = class_conditional_flip(y, rate, 10, rng)
            flipped = y_noisy != y
            det = LabelIssues(random_state=seed).fit(X, y_noisy)
            # the same cheap model as the detector's out-of-fold one: standardise, PCA-64, logistic
            model = make_pipeline(StandardScaler(), PCA(n_components=min(64, X.shape[1]), random_state=seed),
                                  LogisticRegression(max_iter=300))
            acc_noisy = model.fit(X, y_noisy).score(Xt, yt)
            acc_pruned = model.fit(X[~det.flags_], y_noisy[~det.flags_]).score(Xt, yt)
            settings[f"{name}@{rate:g}"] = {
                "recall": float(det.flags_[flipped].mean()), "precision": float(flipped[det.flags_].mean()),
                "n_flagged": int(det.flags_.sum()), "n_flipped": int(flipped.sum()),
                "acc_noisy": float(acc_noisy), "acc_pruned": float(acc_pruned)}
    return {"settings": settings}


def summarize(runs: list[dict]) -> dict:
    by = {}
    for key in runs[0]["settings"]:
        by[key] = {m: mean_std([r["settings"][key][m] for r in runs])
                   for m in ("recall", "precision", "acc_noisy", "acc_pruned")}
    recall_ok = all(v["recall"]["mean"] >= 0.85 for k, v in by.items() if k.endswith("@0.2"))
    acc_ok = all(v["acc_pruned"]["mean"] > v["acc_noisy"]["mean"] for v in by.values())
    return {"measured": {"by_setting": by}, "passed": recall_ok and acc_ok,
            "verdict": "; ".join(f"{k}: recall {v['recall']['mean']:.2f}, acc {v['acc_noisy']['mean']:.2%} -> "
                                 f"{v['acc_pruned']['mean']:.2%}" for k, v in by.items())}
