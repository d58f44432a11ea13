"""Per-group error rates: what a bias attack changes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import DataError


def group_rates(y_true: Any, y_pred: Any, groups: Any, *, positive: int = 1) -> dict[str, dict[str, float]]:
    """Accuracy, false-positive rate and false-negative rate of each group (binary task,
    ``positive`` = the favourable class). A rate with no samples to measure is NaN."""
    y_true, y_pred, g = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    if not (len(y_true) == len(y_pred) == len(g)):
        raise DataError(f"y_true, y_pred and groups differ in length: {len(y_true)}, {len(y_pred)}, {len(g)}")
    out = {}
    for value in np.unique(g):
        m = g == value
        t, p = y_true[m] == positive, y_pred[m] == positive
        out[str(value)] = {"n": int(m.sum()), "accuracy": float(np.mean(y_true[m] == y_pred[m])),
                           "fpr": float(np.mean(p[~t])) if (~t).any() else float("nan"),
                           "fnr": float(np.mean(~p[t])) if t.any() else float("nan"),
                           "positive_rate": float(np.mean(p))}
    return out


def group_gaps(rates: dict[str, dict[str, float]], group: str, reference: str) -> dict[str, float]:
    """``group`` minus ``reference`` for error rate, FPR and FNR (positive = worse for ``group``)."""
    a, b = rates[group], rates[reference]
    return {"error_gap": (1 - a["accuracy"]) - (1 - b["accuracy"]), "fpr_gap": a["fpr"] - b["fpr"],
            "fnr_gap": a["fnr"] - b["fnr"], "positive_rate_gap": a["positive_rate"] - b["positive_rate"]}
