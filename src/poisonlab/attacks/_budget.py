"""The perturbation budget an attack actually used, as reported in ``PoisonResult.info``."""

from __future__ import annotations

import numpy as np


def perturbation_budget(after: np.ndarray, before: np.ndarray) -> dict[str, float]:
    """``linf``: the largest change of any value; ``l2_mean``: the mean per-sample L2 norm of
    the change (0 for no samples)."""
    delta = (np.asarray(after, dtype=np.float64) - before).reshape(len(before), -1)
    if len(delta) == 0:
        return {"linf": 0.0, "l2_mean": 0.0}
    return {"linf": float(np.abs(delta).max()), "l2_mean": float(np.linalg.norm(delta, axis=1).mean())}
