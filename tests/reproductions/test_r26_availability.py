"""R26's pass rule and its fraction mixing, on hand-made seeds (no training)."""

import numpy as np

from poisonlab.reproductions import r26_availability as r26


def _run(clean=0.46, full=None, frac=0.4):
    full = {name: 0.2 for name in r26.R26_ATTACKS} | (full or {})
    seen = {"test_accuracy": frac, "spectral_auroc": 0.5, "spectral_recall": 0.7, "spectral_fpr": 0.7,
            "ac_tpr": 0.0, "ac_fpr": 0.0}
    return {"clean": {"test_accuracy": clean},
            "attacks": {name: {"poison_seconds": 1.0, "linf": 8 / 255, "full": {"test_accuracy": acc}}
                        for name, acc in full.items()},
            "curve": {"adversarial class_targeted": {f"{f:g}": {**seen, "trimmed_loss": {
                "test_accuracy": 0.3, "flagged_poison_share": 0.5, "poisons_flagged": 0.5}}
                for f in r26.R26_AP_FRACTIONS},
                "unlearnable sample_wise": {f"{f:g}": dict(seen) for f in r26.R26_UE_FRACTIONS}}}


def test_passes_only_when_both_required_attacks_drop_25_points():
    assert r26.summarize([_run()])["passed"]  # 46% -> 20%: 26 points for both
    out = r26.summarize([_run(full={"unlearnable sample_wise": 0.24})])  # 22 points
    assert not out["passed"] and "unlearnable sample_wise 24.0% (-22.0 pts)" in out["verdict"]
    # the other two attacks are reported, not required
    assert r26.summarize([_run(full={"adversarial untargeted": 0.45, "unlearnable class_wise": 0.45})])["passed"]
    # the mean over seeds decides
    assert not r26.summarize([_run(), _run(full={"adversarial class_targeted": 0.30})])["passed"]


def test_mix_replaces_exactly_the_fraction():
    clean = np.zeros((50, 1, 2, 2), np.float32)
    poisoned = np.ones_like(clean)
    X, mask = r26._mix(clean, poisoned, 0.2, seed=3)
    assert mask.sum() == 10 and np.all(X[mask] == 1) and np.all(X[~mask] == 0)
    again, mask2 = r26._mix(clean, poisoned, 0.2, seed=3)
    assert np.array_equal(mask, mask2) and not np.array_equal(mask, r26._mix(clean, poisoned, 0.2, seed=4)[1])
