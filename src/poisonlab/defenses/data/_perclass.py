"""Helpers for detectors that score each class separately."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..._validation import check_array, check_labels
from ...exceptions import DataError


def check_features(X: Any, y: Any, *, min_per_class: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(n, d)`` finite features and labels; every present class needs
    ``min_per_class`` samples (a class of one sample has no spread to be an outlier of)."""
    X = check_array(X, "X", min_ndim=2, max_ndim=2)
    y = check_labels(y, len(X))
    counts = np.bincount(y)
    small = [c for c in np.flatnonzero(counts) if counts[c] < min_per_class]
    if small:
        raise DataError(f"class {small[0]} has {counts[small[0]]} sample(s); this detector needs at "
                        f"least {min_per_class} per class (drop or merge tiny classes first)")
    return X, y


def per_class(y: np.ndarray, fn: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """Apply ``fn(indices_of_class, class)`` to each present class; stitch the per-sample outputs."""
    out = np.zeros(len(y), dtype=np.float64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        out[idx] = fn(idx, int(c))
    return out


def relative_to_median(scores: np.ndarray) -> np.ndarray:
    """Scores divided by their median, so classes of different spread share one threshold."""
    med = float(np.median(scores))
    return scores / med if med > 0 else scores - med


def principal_projection(R: np.ndarray, n_components: int) -> np.ndarray:
    """Centre ``R`` and project it on its top principal directions: at most ``n_components``,
    the feature count, and half the samples (robust estimators need n well above d)."""
    Rc = R - R.mean(axis=0)
    k = max(1, min(n_components, Rc.shape[1], len(Rc) // 2))
    w, V = np.linalg.eigh(Rc.T @ Rc)
    return Rc @ V[:, np.argsort(w)[::-1][:k]]


def calibrate_per_class(det: Any, scores: np.ndarray, y: np.ndarray, rule: str = "quantile") -> None:
    """Threshold per-class comparable ``scores`` through the detector's ``_calibrate`` and set
    its ``evidence_``. With ``contamination="auto"`` the scores are first shifted by each
    class's tail-excess cut (:func:`~poisonlab.defenses.data.evidence.tail_excess_cut`), so the
    detector's ``_auto_threshold`` is 0 -- as the "per_class" rule shifts by each class's
    removal cut -- and ranks within a class are unchanged."""
    from .evidence import calibrated_evidence, tail_excess_cut

    if isinstance(det.contamination, str):
        det._calibrate(scores - tail_excess_cut(scores, y))
        det.evidence_ = calibrated_evidence(det.scores_, det.threshold_, groups=y)
    else:
        det._calibrate(scores, rule=rule, groups=y)
        det.evidence_ = calibrated_evidence(det.scores_, det.threshold_, groups=y if rule == "per_class" else None)
