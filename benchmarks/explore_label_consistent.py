"""R6 exploration: why the label-consistent backdoor is not learnt on MNIST (not in the suite).

R6 (``poisonlab reproduce R6``) misses its target: the victim fits the 500 perturbed 7s through
the perturbation rather than through the trigger. This script tries the two ideas the R6 note
left untried, in R6's setting (MNIST 50,000 training digits, R1's CNN 10 epochs, 500 poisons of
class 7, the robust surrogate of R6, Turner et al.'s four-corner checkerboard), and one control:

  stroke d2 eps0.5    PGD (100 steps, away from 7) only on the stroke and the 2 pixels around it,
                      L-inf 0.5: the background far from the digit stays black.
  stroke d1 eps0.99   the same, 1 pixel around the stroke, no practical L-inf limit.
  natural full eps0.3 R6's PGD (L-inf 0.3, whole image), then projected back to MNIST-like
                      pixels (binarised at 0.5, 3x3 Gaussian blur, sigma 0.6): no grey texture.
  natural stroke d2 eps0.5
                      the stroke-restricted PGD, then the same projection.
  dirty-label control 500 non-7 digits with the same trigger relabelled 7 (BadNets): whether
                      this victim learns this trigger from 500 samples at all.

For each: ASR (non-7 test digits with the trigger -> 7), clean accuracy, the share of poisons
the surrogate misclassifies (how hard they are), and the share of poisons *without* their trigger
that the victim calls 7 (near 1: it fitted them through their content, not the trigger).

Run:  POISONLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/explore_label_consistent.py
Writes benchmarks/results/explore_label_consistent.json and a few poisons per variant as .npy
under benchmarks/results/explore_label_consistent/.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import RESULTS, data_dir, environment, write_json


def stroke_mask(X: np.ndarray, dilate: int) -> np.ndarray:
    """1 on the digit's stroke (pixels > 0.2) dilated by ``dilate`` pixels, else 0: where
    :func:`~poisonlab.models.gradients.pgd` may perturb (its ``mask``)."""
    m = torch.tensor(X > 0.2, dtype=torch.float32)
    return (F.max_pool2d(m, 2 * dilate + 1, stride=1, padding=dilate) if dilate else m).numpy()


def natural_projection(P: np.ndarray, sigma: float = 0.6) -> np.ndarray:
    """Binarise at 0.5, then blur with a 3x3 Gaussian: nearly binary strokes with MNIST's soft edges."""
    k = torch.exp(-(torch.arange(3.0) - 1) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    b = torch.tensor(P > 0.5, dtype=torch.float32)
    return F.conv2d(b, (k[:, None] * k[None, :])[None, None], padding=1).clamp(0, 1).numpy().astype(P.dtype)


VARIANTS = {
    "stroke d2 eps0.5": {"eps": 0.5, "dilate": 2, "natural": False},
    "stroke d1 eps0.99": {"eps": 0.99, "dilate": 1, "natural": False},
    "natural full eps0.3": {"eps": 0.3, "dilate": None, "natural": True},
    "natural stroke d2 eps0.5": {"eps": 0.5, "dilate": 2, "natural": True},
}


def main() -> None:
    torch.set_num_threads(1)
    from poisonlab.models.gradients import pgd
    from poisonlab.attacks.data import LabelConsistent
    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.evaluation.metrics import backdoor_metrics
    from poisonlab.models import TorchClassifier
    from poisonlab.reproductions.common import mnist_splits, train_config, victim_run
    from poisonlab.reproductions.r06_label_consistent import adversarial_surrogate

    train, val, test = mnist_splits(data_dir())
    t0 = time.perf_counter()
    sur = adversarial_surrogate(val, 0)
    out: dict = {"surrogate_clean_accuracy": float(np.mean(sur.predict(test.X) == test.y)),
                 "surrogate_seconds": time.perf_counter() - t0, "variants": {}}
    trigger = dict(pattern="checkerboard", location="four-corners")
    (RESULTS / "explore_label_consistent").mkdir(parents=True, exist_ok=True)

    class Explored(LabelConsistent):
        def __init__(self, *, dilate=None, natural=False, **kw):
            super().__init__(**kw)
            self.dilate, self.natural = dilate, natural

        def _prepare(self, X, y, idx, rng, *, model=None, **_):
            mask = None if self.dilate is None else stroke_mask(X[idx], self.dilate)
            P = pgd(model.module_, X[idx], y[idx], eps=float(self.eps), steps=100, seed=int(rng.integers(2**31)),
                    mask=mask)
            return natural_projection(P) if self.natural else P

    picked = sys.argv[1:] or [*VARIANTS, "dirty-label control"]
    for name in picked:
        t0 = time.perf_counter()
        if name == "dirty-label control":
            rng = np.random.default_rng(0)
            idx = rng.choice(np.flatnonzero(train.y != 7), 500, replace=False)
            stamp = LabelConsistent(target=7, **trigger)
            X, y = train.X.copy(), train.y.copy()
            X[idx], y[idx] = stamp.apply_trigger(X[idx]), 7
            victim = TorchClassifier(model_factory("strip-mnist-cnn", "image"), config=train_config(0, 10)).fit(X, y)
            m = backdoor_metrics(victim, stamp, test.X, test.y, test.n_classes)
            row = {k: m[k] for k in ("attack_success_rate", "clean_accuracy")}
            P = X[idx]
        else:
            atk = Explored(target=7, n_poison=500, steps=100, random_state=0, **trigger, **VARIANTS[name])
            run = victim_run(train, test, atk, 0, 10, None, model=sur)
            res, victim = run["poison_result"], run["models"]["poisoned"]
            P = res.X[res.indices]
            row = {"attack_success_rate": run["poisoned"]["attack_success_rate"],
                   "clean_accuracy": run["poisoned"]["clean_accuracy"],
                   "poisons_the_surrogate_misclassifies": float(np.mean(sur.predict(_remove_corners(P)) != 7))}
        row["untriggered_poisons_the_victim_calls_7"] = float(np.mean(victim.predict(_remove_corners(P)) == 7))
        row["seconds"] = time.perf_counter() - t0
        np.save(RESULTS / "explore_label_consistent" / f"{name.replace(' ', '_')}.npy", P[:16])
        out["variants"][name] = row
        print(name, row, flush=True)
    out["environment"] = environment()
    write_json("explore_label_consistent.json", out)


def _remove_corners(P: np.ndarray, size: int = 3) -> np.ndarray:
    """The poisons with the four-corner patches set back to black (MNIST's corners are black)."""
    P = P.copy()
    h, w = P.shape[-2:]
    for r in (0, h - size):
        for c in (0, w - size):
            P[..., r:r + size, c:c + size] = 0
    return P


if __name__ == "__main__":
    main()
