"""Spectral signatures (Tran, Li & Madry 2018)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...base import CONTAMINATION_OR_AUTO, BaseDetector
from ...registry import register
from ._perclass import calibrate_per_class, check_features, per_class, relative_to_median


def spectral_scores(R: np.ndarray, n_components: int = 1) -> np.ndarray:
    """Outlier scores of one class's representations (Tran et al. 2018, Algorithm 1).

    ``R_hat = R - mean(R)`` (the *centred* representations); ``v`` = the top right singular
    vector(s) of ``R_hat``; score ``tau_i = (R_hat_i . v)^2`` (summed over the top
    ``n_components`` vectors). Poisoned samples of a backdoor concentrate along ``v``.
    """
    Rc = R - R.mean(axis=0, keepdims=True)
    # Top right singular vectors of Rc = top eigenvectors of Rc^T Rc (d x d, cheaper when n >> d).
    if Rc.shape[0] > Rc.shape[1]:
        w, V = np.linalg.eigh(Rc.T @ Rc)
        top = V[:, np.argsort(w)[::-1][:n_components]]
    else:
        top = np.linalg.svd(Rc, full_matrices=False)[2][:n_components].T
    return ((Rc @ top) ** 2).sum(axis=1)


@register("detector", "spectral")
class SpectralSignatures(BaseDetector):
    """Spectral signatures (Tran, Li & Madry 2018, "Spectral Signatures in Backdoor Attacks").

    For each class, samples are scored by the squared projection of their centred
    representations (a model's penultimate layer) on the top singular vector. Scores are divided
    by their class's median so that one threshold serves every class (``raw_scores_`` keeps the
    paper's values). The paper removes the ``1.5 epsilon`` highest-scoring samples of each class:
    ``threshold_rule="per_class"`` with ``contamination=epsilon`` flags exactly those.

    Threat model: dirty-label backdoors whose poisons are separable from clean samples of the
    target class in representation space, and that make up a large enough fraction of it.

    Parameters
    ----------
    n_components : int, default=1
        Number of top singular vectors to project on (the paper uses 1).
    contamination : float in (0, 0.5] or "auto", default=0.05
        The expected poisoned fraction (the paper's epsilon). "auto" (no epsilon known): the
        tail-excess rule (:func:`~poisonlab.defenses.data.evidence.tail_excess_cut`), which
        flags the high scores of a class in significant excess over the other classes'.
    threshold_rule : {"quantile", "per_class"}, default="quantile"
        "quantile": flag the ``contamination`` highest-scoring fraction of all samples.
        "per_class": the paper's rule, flag the ``ceil(1.5 * contamination * n_c)``
        highest-scoring samples of each class ``c``; ``scores_`` are then each class's scores
        minus its cut, so that ``flags_ = scores_ > threshold_ = 0`` (ranks within a class are
        unchanged; see :meth:`~poisonlab.base.BaseDetector._calibrate`).

    Limits
    ------
    Needs the poisons to be a spectral outlier: with few poisons per class (small epsilon) the top
    direction is that of clean variation and recall falls (Hayase et al. 2021; use SPECTRE).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.data import SpectralSignatures
    >>> rng = np.random.default_rng(0)
    >>> R = rng.normal(size=(200, 8)); R[:10] += 6
    >>> det = SpectralSignatures(contamination=0.05).fit(R, np.zeros(200, int))
    >>> int(det.flags_[:10].sum())
    10
    """

    stage = "data"
    unit = "sample"
    family = "cluster"
    #: The paper removes 1.5 epsilon of each class.
    per_class_factor = 1.5

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "contamination": CONTAMINATION_OR_AUTO,
        "threshold_rule": [Options(("quantile", "per_class"))],
    }

    def __init__(self, *, n_components: int = 1, contamination: Any = 0.05,
                 threshold_rule: str = "quantile") -> None:
        self.n_components = n_components
        self.contamination = contamination
        self.threshold_rule = threshold_rule

    def fit(self, X: Any, y: Any) -> "SpectralSignatures":
        """Score representations ``X`` (n, d) grouped by labels ``y``."""
        X, y = check_features(X, y)
        X = X.astype(np.float64, copy=False)
        raw = per_class(y, lambda idx, c: spectral_scores(X[idx], self.n_components))
        self.raw_scores_ = raw
        calibrate_per_class(self, per_class(y, lambda idx, c: relative_to_median(raw[idx])), y, self.threshold_rule)
        return self

    def _auto_threshold(self, scores: np.ndarray) -> float:
        return 0.0  # the scores arrive shifted by each class's tail-excess cut
