"""R23: beyond DPA on R16's setting: Run-off Election (Rezaei et al., ICML 2023) on R16's base
models, and Finite Aggregation (Wang, Levine & Feizi, ICML 2022) with and without Run-off
Election, each against DPA's plurality.

Threat model: as R16 (insertions and removals of training samples). Every certificate counts
them: DPA's and ROE's count changed partitions (one per insertion/removal), FA's and FA+ROE's
count changed buckets (one per insertion/removal, each feeding ``D`` base models).

* **ROE** (:func:`~poisonlab.defenses.training.certificates.roe_radius`): R16's 1200 base models
  vote twice (top two classes, then a head-to-head vote over every model's logits).
* **FA** (:func:`~poisonlab.defenses.training.certificates.fa_radius`): the 60,000 digits hashed
  into ``K * D`` buckets, ``K * D`` base models (R16's linear head on Gabor features, R16's
  training), each on ``D`` buckets: every model sees 1/1200 of the data, as R16's.
* **FA+ROE** (:func:`~poisonlab.defenses.training.certificates.fa_roe_radius`): Run-off Election
  over FA's models.

``D = 3``: FA trains ``K * D`` models of ~50 digits (3600 here) and certifies them, so its cost
grows with ``D``; measured on the project's shared 2-core machine (one thread), ``D = 2`` took
1.4-1.8 min of training and ~1 min of certification per seed beside R16's ~2.5 min, so ``D = 3``
(the larger of the two spreads considered; FA's gains grow with ``d`` in the paper) keeps a seed
near 6 minutes. The pass rule is applied to each method (as before: never below DPA on any seed,
and >= 1 point above it at DPA's median radius on average over the seeds); R23 passes if one
method meets it.

R23 reads R16's vote statistics from the run's cache folder when R16 ran first with the same
``--cache-dir`` (``poisonlab reproduce R16 R23``); otherwise it trains them again. FA's
certificates are cached there too (``r23/``), so a stopped run resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .common import RunContext, mean_std
from .r16_dpa import BATCH, EPOCHS, K, LR, RADII, base_model, ensemble_votes

ID = "R23"
TITLE = "Run-off Election and Finite Aggregation vs DPA on MNIST, k = 1200"
SETTING = ("R16's 1200 base models (same seed, same partitions) with DPA's plurality + certificate vs Run-off "
           "Election over them; Finite Aggregation with k = 1200, d = 3 (3600 buckets by sha256, 3600 base models "
           "of R16's kind and training, each on 3 buckets = 1/1200 of the data) with plurality (FA) and Run-off "
           "Election (FA+ROE); certified accuracy on the 10,000 MNIST test digits at every radius 0..max")
PAPER = "DPA+ROE / FA: up to 3-4 points more certified accuracy than DPA at the same radius"
TARGET = ("certified accuracy >= DPA's at every radius and >= 1 point higher at DPA's median radius "
          "(the best of ROE, FA, FA+ROE)")
#: Expected CPU minutes per seed on one thread: R16's models (~0.5, none if cached) + FA's 3600
#: models (measured on the idle machine 2026-12-02: 24-25 s to train, 32-33 s to certify).
MINUTES = 2.0
DATA = ("mnist",)

#: Finite Aggregation's spread: every bucket feeds D models.
D = 3
#: The methods compared with DPA.
METHODS = ("roe", "fa", "fa_roe")
_NAMES = MappingProxyType({"roe": "ROE", "fa": "FA", "fa_roe": "FA+ROE"})


def _fa_tag() -> str:
    return hashlib.sha256(json.dumps([K, D, EPOCHS, LR, BATCH, "gabor7-linear", "fa"]).encode()).hexdigest()[:12]


def fa_certificates(seed: int, ctx: RunContext) -> dict:
    """Train Finite Aggregation's ``K * D`` base models for ``seed`` (or load their test-set
    certificates from the run's cache folder) and return FA's and FA+ROE's predictions and radii,
    the vote counts, labels and timings."""
    path = Path(ctx.cache_dir) / "r23" / f"fa_seed{seed}_{_fa_tag()}.npz"
    if path.is_file():
        z = np.load(path)
        return {k: z[k] for k in z.files} | {"cached": True}
    from ..data import load_mnist
    from ..defenses.training.certificates import fa_radius, fa_roe_radius
    from ..defenses.training.finite_aggregation import FiniteAggregation
    from ..models.ensemble import GaborFeatures
    from ..models.training import TrainConfig

    splits = load_mnist(ctx.data_dir)
    train, test = splits.train, splits.test
    fa = FiniteAggregation(k=K, d=D, features=GaborFeatures(), random_state=seed)
    t0 = time.perf_counter()
    fa.fit(train.X, train.y, model_factory=base_model,
           config=TrainConfig(epochs=EPOCHS, lr=LR, batch_size=BATCH, optimizer="adam"))
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    n, C = len(test.y), fa.n_classes_
    out = {name: np.empty(n, dtype=np.int64) for name in ("fa_pred", "fa_radius", "fa_roe_pred", "fa_roe_radius")}
    counts = np.zeros((n, C), dtype=np.int64)
    for i0, i1, S in fa.classifier_.scores(test.X):      # every model's logits, once per input
        votes = S.argmax(axis=2)
        np.add.at(counts, (np.arange(i0, i1)[:, None], votes), 1)
        out["fa_pred"][i0:i1], out["fa_radius"][i0:i1] = fa_radius(votes, fa.spread_, C)
        out["fa_roe_pred"][i0:i1], out["fa_roe_radius"][i0:i1] = fa_roe_radius(S, fa.spread_)
    out |= {"counts": counts, "y": np.asarray(test.y), "fit_seconds": np.float64(fit_seconds),
            "certify_seconds": np.float64(time.perf_counter() - t0), "model_sizes": fa.model_sizes_}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(path)
    return out | {"cached": False}


def compare(p_dpa, r_dpa, methods: dict, y) -> dict:
    """Certified accuracy of DPA and of each method at every radius, and the differences the
    pass rule reads: at DPA's median radius, the smallest over all radii and where it is < 0."""
    from ..defenses.training.certificates import certified_accuracy, median_certified_radius

    top = int(max([r_dpa.max()] + [r.max() for _, r in methods.values()]))
    every = np.arange(0, top + 2)
    a_dpa = certified_accuracy(p_dpa, r_dpa, y, every)
    med = median_certified_radius(p_dpa, r_dpa, y)
    out = {"dpa_median_radius": med, "clean_accuracy": {"dpa": float((p_dpa == y).mean())},
           "curve": {"radius": list(RADII), "dpa": [float(a_dpa[r]) if r < len(a_dpa) else 0.0 for r in RADII]}}
    for name, (p, r) in methods.items():
        a = certified_accuracy(p, r, y, every)
        diff = a - a_dpa
        out[name] = {"median_radius": median_certified_radius(p, r, y),
                     "gain_at_dpa_median": float(diff[med]) if med >= 0 else None,
                     "min_gain": float(diff.min()), "radius_of_min_gain": int(every[diff.argmin()]),
                     "max_gain": float(diff.max()), "radius_of_max_gain": int(every[diff.argmax()]),
                     "radii_below_dpa": [int(x) for x in every[diff < 0]][:50],
                     "n_radii_below_dpa": int((diff < 0).sum())}
        out["clean_accuracy"][name] = float((p == y).mean())
        out["curve"][name] = [float(a[x]) if x < len(a) else 0.0 for x in RADII]
    return out


def run(seed: int, ctx: RunContext) -> dict:
    from ..defenses.training.certificates import dpa_radius, roe_radius

    v = ensemble_votes(seed, ctx)
    counts, pairwise, y = v["counts"], v["pairwise"], v["y"]
    fa = fa_certificates(seed, ctx)
    if not np.array_equal(fa["y"], y):
        raise RuntimeError("R23: FA's and DPA's test labels differ")
    p_dpa, r_dpa = dpa_radius(counts)
    methods = {"roe": roe_radius(counts, pairwise), "fa": (fa["fa_pred"], fa["fa_radius"]),
               "fa_roe": (fa["fa_roe_pred"], fa["fa_roe_radius"])}
    sizes = fa["model_sizes"]
    out = compare(p_dpa, r_dpa, methods, y)
    out["fa"] |= {"d": D, "n_models": int(len(sizes)),
                  "model_size": {"min": int(sizes.min()), "max": int(sizes.max()), "mean": float(sizes.mean())},
                  "train_seconds": float(fa["fit_seconds"]), "certify_seconds": float(fa["certify_seconds"])}
    return out | {"cached_models": {"dpa": bool(v["cached"]), "fa": bool(fa["cached"])}}


def _method_summary(runs: list[dict], name: str) -> dict:
    gain = mean_std([r[name]["gain_at_dpa_median"] for r in runs])
    below = [r[name]["n_radii_below_dpa"] for r in runs]
    return {"gain_at_dpa_median": gain, "min_gain": mean_std([r[name]["min_gain"] for r in runs]),
            "median_radius": mean_std([r[name]["median_radius"] for r in runs]),
            "radii_below_dpa": below,
            "passed": bool(all(b == 0 for b in below) and gain["mean"] >= 0.01)}


def summarize(runs: list[dict]) -> dict:
    per = {name: _method_summary(runs, name) for name in METHODS}
    best = max(METHODS, key=lambda m: (per[m]["passed"], per[m]["gain_at_dpa_median"]["mean"]))
    seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"

    def text(m):
        p = per[m]
        below = p["radii_below_dpa"]
        where = "never below" if all(b == 0 for b in below) else f"below DPA at {below} radii"
        return (f"{_NAMES[m]} {p['gain_at_dpa_median']['mean'] * 100:+.2f} points at DPA's median radius, "
                f"smallest difference {p['min_gain']['mean'] * 100:+.2f} ({where})")

    return {"measured": {"dpa_median_radius": mean_std([r["dpa_median_radius"] for r in runs]),
                         **{m: {k: v for k, v in per[m].items() if k != "passed"} for m in METHODS},
                         "fa_d": D},
            "passed": bool(per[best]["passed"]),
            "verdict": f"best {_NAMES[best]}; " + "; ".join(text(m) for m in (best, *[m for m in METHODS if m != best]))
                       + f" ({seeds})"}
