"""R23: Run-off Election on R16's base models (Rezaei et al., ICML 2023), against DPA's plurality.

Threat model: as R16 (insertions and removals; each changes one partition, so one base model).
The same 1200 base models vote twice: round one keeps the two classes with most votes, round two
lets every model choose between them by its logits. The certificate
(:func:`~poisonlab.defenses.training.certificates.roe_radius`) is sound (tested against brute
force over every set of changed models) and counts changed partitions, like DPA's.

R23 reads R16's vote statistics from the run's cache folder when R16 ran first with the same
``--cache-dir`` (``poisonlab reproduce R16 R23``); otherwise it trains the same models again.
"""

from __future__ import annotations

import numpy as np

from .common import RunContext, mean_std
from .r16_dpa import RADII, ensemble_votes

ID = "R23"
TITLE = "Run-off Election vs DPA on R16's base models"
SETTING = ("R16's 1200 base models (same seed, same partitions); DPA plurality + its certificate vs Run-off "
           "Election (top two, then a head-to-head vote over every model's logits) + its certificate; "
           "certified accuracy on the 10,000 MNIST test digits at every radius 0..max")
PAPER = "DPA+ROE: up to 3-4 points more certified accuracy than DPA at the same radius"
TARGET = "certified accuracy >= DPA's at every radius and >= 1 point higher at DPA's median radius"
MINUTES = 0.5
DATA = ("mnist",)


def run(seed: int, ctx: RunContext) -> dict:
    from ..defenses.training.certificates import certified_accuracy, dpa_radius, median_certified_radius, roe_radius

    v = ensemble_votes(seed, ctx)
    counts, pairwise, y = v["counts"], v["pairwise"], v["y"]
    p_dpa, r_dpa = dpa_radius(counts)
    p_roe, r_roe = roe_radius(counts, pairwise)
    top = int(max(r_dpa.max(), r_roe.max()))
    every = np.arange(0, top + 2)
    a_dpa = certified_accuracy(p_dpa, r_dpa, y, every)
    a_roe = certified_accuracy(p_roe, r_roe, y, every)
    med = median_certified_radius(p_dpa, r_dpa, y)
    diff = a_roe - a_dpa
    return {"dpa_median_radius": med, "roe_median_radius": median_certified_radius(p_roe, r_roe, y),
            "gain_at_dpa_median": float(diff[med]) if med >= 0 else None,
            "min_gain": float(diff.min()), "radius_of_min_gain": int(every[diff.argmin()]),
            "max_gain": float(diff.max()), "radius_of_max_gain": int(every[diff.argmax()]),
            "radii_where_roe_below": [int(r) for r in every[diff < 0]][:50],
            "n_radii_where_roe_below": int((diff < 0).sum()),
            "clean_accuracy": {"dpa": float((p_dpa == y).mean()), "roe": float((p_roe == y).mean())},
            "curve": {"radius": list(RADII),
                      "dpa": [float(a_dpa[r]) if r < len(a_dpa) else 0.0 for r in RADII],
                      "roe": [float(a_roe[r]) if r < len(a_roe) else 0.0 for r in RADII]},
            "cached_models": bool(v["cached"])}


def summarize(runs: list[dict]) -> dict:
    gain = mean_std([r["gain_at_dpa_median"] for r in runs])
    min_gain = mean_std([r["min_gain"] for r in runs])
    everywhere = all(r["n_radii_where_roe_below"] == 0 for r in runs)
    passed = everywhere and gain["mean"] >= 0.01
    seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
    return {"measured": {"gain_at_dpa_median": gain, "min_gain": min_gain,
                         "dpa_median_radius": mean_std([r["dpa_median_radius"] for r in runs]),
                         "roe_median_radius": mean_std([r["roe_median_radius"] for r in runs]),
                         "radii_where_roe_below": [r["n_radii_where_roe_below"] for r in runs]},
            "passed": bool(passed),
            "verdict": (f"ROE - DPA certified accuracy at DPA's median radius {gain['mean'] * 100:+.2f} points; "
                        f"smallest difference over all radii {min_gain['mean'] * 100:+.2f} points "
                        f"({'never below' if everywhere else 'below DPA at some radii'}; {seeds})")}
