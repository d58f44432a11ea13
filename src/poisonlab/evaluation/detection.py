"""Detection metrics against a ground-truth poison mask: precision, recall, F1, AUROC, TPR at a
fixed FPR, overall and per class."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_array, check_labels, check_same_length
from ..exceptions import DataError


def _mask(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype != bool:
        raise DataError(f"{name} must be boolean; got {arr.dtype}")
    return arr


def precision_recall_f1(flags: Any, poison_mask: Any) -> dict[str, float]:
    """Of the flagged, how many are poison (precision); of the poison, how many are flagged."""
    f, p = _mask(flags, "flags"), _mask(poison_mask, "poison_mask")
    check_same_length(flags=f, poison_mask=p)
    tp = int((f & p).sum())
    precision = tp / f.sum() if f.sum() else 0.0
    recall = tp / p.sum() if p.sum() else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    fpr = int((f & ~p).sum()) / max(int((~p).sum()), 1)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "fpr": float(fpr), "n_flagged": int(f.sum()), "n_poison": int(p.sum()), "true_positives": tp}


def auroc(scores: Any, poison_mask: Any) -> float:
    """Probability that a random poison scores above a random clean sample (ties count half);
    NaN when either group is empty. Rank formula, O(n log n)."""
    from scipy.stats import rankdata

    s = check_array(scores, "scores", min_ndim=1, max_ndim=1, dtype=np.float64)
    p = _mask(poison_mask, "poison_mask")
    check_same_length(scores=s, poison_mask=p)
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[p].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tpr_at_fpr(scores: Any, poison_mask: Any, fpr: float = 0.01) -> float:
    """Recall of poison when the threshold lets through at most ``fpr`` of clean samples."""
    s = check_array(scores, "scores", min_ndim=1, max_ndim=1, dtype=np.float64)
    p = _mask(poison_mask, "poison_mask")
    if not p.any() or p.all():
        return float("nan")
    clean = np.sort(s[~p])
    k = int(np.floor(fpr * len(clean)))
    threshold = clean[len(clean) - k - 1] if k < len(clean) else -np.inf
    return float((s[p] > threshold).mean())


def detection_report(scores: Any, flags: Any, poison_mask: Any, y: Any = None) -> dict[str, Any]:
    """All detection metrics, plus per-class precision/recall when labels ``y`` are given."""
    out = precision_recall_f1(flags, poison_mask)
    out["auroc"] = auroc(scores, poison_mask)
    out["tpr_at_fpr_1pct"] = tpr_at_fpr(scores, poison_mask, 0.01)
    out["tpr_at_fpr_5pct"] = tpr_at_fpr(scores, poison_mask, 0.05)
    if y is not None:
        y = check_labels(y, len(out) and len(np.asarray(flags)))
        f, p = np.asarray(flags), np.asarray(poison_mask)
        out["per_class"] = {int(c): precision_recall_f1(f[y == c], p[y == c]) for c in np.unique(y)}
    return out
