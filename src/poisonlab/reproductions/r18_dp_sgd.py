"""R18: DP-SGD (Opacus) against BadNets and label flips: the robustness / utility trade-off.

Threat model: the attacker controls 1% of the training set (BadNets, R1's trigger, target 7) or
flips 20% of the labels at random; the defender trains with DP-SGD (per-sample clipping at 1 and
Gaussian noise) and reports the privacy spent. Noise 0 is clipping alone.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np

from .common import RunContext, mean_std

ID = "R18"
TITLE = "DP-SGD (Opacus) against BadNets 1% and 20% label flips"
SETTING = ("MNIST, the first 10,000 training digits (a subset: DP-SGD's per-sample gradients cost "
           "~3x a plain epoch on 2 CPU cores), full test set; BadNets 1% (R1's 3x3 white square, target 7) "
           "and 20% random label flips; MLP 784-256-10 trained 4 epochs, Adam 1e-3, expected batch 256 "
           "(Poisson sampling); DP-SGD through Opacus: clip 1, noise multiplier 0 / 0.5 / 1 / 2, RDP "
           "accountant, epsilon at delta 1e-5; plus a plain (non-DP) training per attack")
PAPER = "DP-SGD increases robustness to poisoning at a utility cost (Ma et al. 2019; Hong et al. 2020)"
TARGET = "the ASR and accuracy trade-off curve vs noise multiplier, with epsilon per noise level"
#: Expected CPU minutes per seed on one thread (measured under load: see docs/training.md).
MINUTES = 6.0
DATA = ("mnist",)

R18_TRAIN_SIZE = 10_000
R18_NOISES = (0.0, 0.5, 1.0, 2.0)
R18_ATTACKS = MappingProxyType({
    "badnets@1%": ("badnets", MappingProxyType({"target": 7, "poison_rate": 0.01, "patch_size": 3,
                                                "location": "bottom-right", "pattern": "square", "value": 1.0})),
    "label_flip@20%": ("random_label_flip", MappingProxyType({"poison_rate": 0.2})),
})
EPOCHS, BATCH, LR, DELTA, CLIP = 4, 256, 1e-3, 1e-5, 1.0


def run(seed: int, ctx: RunContext) -> dict:
    from .. import registry
    from ..defenses.training import DPSGD
    from ..evaluation.metrics import backdoor_metrics, clean_accuracy
    from ..models import TorchClassifier, TrainConfig, model_factory

    train, _, test = ctx.mnist()
    X, y = train.X[:R18_TRAIN_SIZE], train.y[:R18_TRAIN_SIZE]
    factory = model_factory("mlp", "image", hidden=(256,))
    cfg = TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=LR, optimizer="adam", seed=seed)
    out: dict = {}
    for label, (name, params) in R18_ATTACKS.items():
        atk = registry.create("attack", name, **params, random_state=seed)
        res = atk.poison(X, y)
        rows = {}

        def measure(clf):
            if name == "badnets":
                m = backdoor_metrics(clf, atk, test.X, test.y, 10)
                return {"clean_accuracy": m["clean_accuracy"], "attack_success_rate": m["attack_success_rate"]}
            return {"clean_accuracy": clean_accuracy(test.y, clf.predict(test.X))}

        plain = TorchClassifier(factory, config=cfg).fit(res.X, res.y)
        rows["plain"] = {**measure(plain), "epsilon": math.inf, "noise_multiplier": None}
        for noise in R18_NOISES:
            dp = DPSGD(noise_multiplier=noise, max_grad_norm=CLIP, delta=DELTA, accountant="rdp").fit(
                res.X, res.y, model_factory=factory, config=cfg)
            rows[f"noise={noise:g}"] = {**measure(dp), "epsilon": dp.epsilon_, "noise_multiplier": noise}
        out[label] = rows
    return {"curves": out}


def summarize(runs: list[dict]) -> dict:
    curves = {}
    for label in runs[0]["curves"]:
        curves[label] = {}
        for key in runs[0]["curves"][label]:
            rows = [r["curves"][label][key] for r in runs]
            curves[label][key] = {m: mean_std([row[m] for row in rows]) for m in rows[0]
                                  if m not in ("noise_multiplier",) and rows[0][m] is not None
                                  and not (isinstance(rows[0][m], float) and math.isinf(rows[0][m]))}
            # no privacy (plain training, noise 0) is epsilon = inf, which JSON stores as null
            eps = rows[0]["epsilon"]
            curves[label][key]["epsilon"] = (mean_std([row["epsilon"] for row in rows])
                                            if eps is not None and math.isfinite(eps) else "inf")
    # the curve is the deliverable; it "passes" when it shows the trade-off: the most noise gives a
    # lower ASR than plain training and costs clean accuracy
    bd = curves.get("badnets@1%", {})
    top = f"noise={max(R18_NOISES):g}"
    passed = bool(bd) and bd[top]["attack_success_rate"]["mean"] < bd["plain"]["attack_success_rate"]["mean"]
    verdict = "; ".join(
        f"{label} {key}: acc {v['clean_accuracy']['mean']:.2%}"
        + (f", ASR {v['attack_success_rate']['mean']:.2%}" if "attack_success_rate" in v else "")
        + (f", eps {v['epsilon']['mean']:.2f}" if isinstance(v.get("epsilon"), dict) else "")
        for label, c in curves.items() for key, v in c.items())
    return {"measured": {"curves": curves, "seeds": len(runs)}, "passed": passed, "verdict": verdict}
