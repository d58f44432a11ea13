"""Label issues by confident learning (Northcutt, Jiang & Chuang 2021), through cleanlab."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import HasMethods, Interval, Options, check_array, check_seed
from ...base import CONTAMINATION_OR_AUTO, BaseDetector
from ...exceptions import DataError
from ...registry import register
from ._neighbors import kneighbors
from ._perclass import check_features
from .evidence import calibrated_evidence


def out_of_fold_probabilities(X: np.ndarray, y: np.ndarray, estimator: Any, folds: int, seed: int) -> np.ndarray:
    """``P[i] = model trained without i's fold, applied to i``: the held-out probabilities
    confident learning needs (in-sample ones are over-confident on the very labels in doubt)."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(clone(estimator), X, y, cv=cv, method="predict_proba")


def knn_out_of_fold_probabilities(Z: np.ndarray, y: np.ndarray, folds: int, seed: int, *, k: int = 10,
                                  search: str = "auto") -> np.ndarray:
    """Out-of-fold class probabilities of a distance-weighted ``k``-nearest-neighbour classifier
    (scikit-learn's ``KNeighborsClassifier(weights="distance")``: votes weighted by ``1 / d``, a
    neighbour at distance 0 takes the whole vote) over the same stratified folds as
    :func:`out_of_fold_probabilities`, neighbours from
    :func:`~poisonlab.defenses.data._neighbors.kneighbors` (``search``)."""
    from sklearn.model_selection import StratifiedKFold

    n_classes = int(y.max()) + 1
    P = np.zeros((len(y), n_classes))
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(Z, y):
        idx = kneighbors(Z[train], Z[test], k, method=search, seed=seed)
        d = np.sqrt(((Z[test][:, None, :] - Z[train][idx]) ** 2).sum(axis=2))
        w = np.where(d > 0, 1.0 / np.maximum(d, 1e-300), 0.0)
        zero = (d == 0).any(axis=1)
        w[zero] = (d[zero] == 0).astype(np.float64)
        votes = np.zeros((len(test), n_classes))
        np.add.at(votes, (np.repeat(np.arange(len(test)), k), y[train][idx].ravel()), w.ravel())
        P[test] = votes / votes.sum(axis=1, keepdims=True)
    # classes absent from a training fold get probability 0, as in cross_val_predict
    return P[:, np.unique(y)] if len(np.unique(y)) < n_classes else P


@register("detector", "label_issues")
class LabelIssues(BaseDetector):
    """Confident learning (Northcutt, Jiang & Chuang 2021, "Confident Learning: Estimating
    Uncertainty in Dataset Labels"), through cleanlab.

    Scores each sample by ``1 - p(given label | x)`` from out-of-fold predicted probabilities
    (cleanlab's self-confidence label quality). With ``contamination="auto"`` the number flagged is
    the number of label issues cleanlab's ``find_label_issues`` estimates from the confident
    joint; the flagged ones are the lowest-quality labels.

    Threat model: label flipping (random or targeted) of a fraction of the training set.

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        Fitted per fold on the features to get out-of-fold probabilities. Default: PCA to at
        most 40 dimensions (fitted once on all rows: it never sees a label), then
        distance-weighted 10-nearest-neighbours per fold (brute-force search). Confident learning is
        only as good as its probabilities: on 20% class-conditional flips this default found
        87% (digits) and 86% (MNIST) of them at 85-89% precision, where standardise + PCA-64 +
        logistic regression found 80% at 58-65% (measured for R19). Ignored when ``fit``
        receives ``pred_probs``.
    search : {"auto", "exact", "cells"}, default="auto"
        How the default estimator finds neighbours
        (:func:`~poisonlab.defenses.data._neighbors.kneighbors`); "auto" searches k-means cells
        above 40,000 training rows per fold, all pairs below.
    cv_folds : int, default=5
        Folds of the out-of-fold probabilities; the default estimator's cost is about
        ``(cv_folds - 1) / cv_folds`` of one all-pairs neighbour search, so 2 folds cost
        about 60% of 5 (each sample's probability then comes from half the data).
    contamination : "auto" or float, default="auto"
    random_state : int, Generator or None, default=0

    Limits
    ------
    Blind to clean-label poisons and to backdoors whose label agrees with the (triggered) input
    as the model sees it. Needs probabilities that are informative: weak features give weak
    out-of-fold predictions.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.data import LabelIssues
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 100); X = rng.normal(size=(200, 2)) + 4 * y[:, None]
    >>> y_noisy = y.copy(); y_noisy[:5] = 1
    >>> det = LabelIssues().fit(X, y_noisy)
    >>> int(det.flags_[:5].sum())
    5
    """

    stage = "data"
    unit = "sample"
    family = "label"

    _parameter_constraints = {
        "estimator": [HasMethods("fit", "predict_proba"), None],
        "cv_folds": [Interval(numbers.Integral, 2, None, closed="left")],
        "search": [Options(("auto", "exact", "cells"))],
        "contamination": CONTAMINATION_OR_AUTO,
        "random_state": ["random_state"],
    }

    def __init__(self, *, estimator: Any = None, cv_folds: int = 5, search: str = "auto",
                 contamination: Any = "auto", random_state: Any = 0) -> None:
        self.estimator = estimator
        self.cv_folds = cv_folds
        self.search = search
        self.contamination = contamination
        self.random_state = random_state

    def _auto_threshold(self, scores: np.ndarray) -> float:
        k = self.n_issues_
        if k == 0:
            return float(scores.max())
        ranked = np.sort(scores)[::-1]
        return float(ranked[k]) if k < len(ranked) else float(ranked[-1]) - 1e-12

    def fit(self, X: Any, y: Any, *, pred_probs: Any = None) -> "LabelIssues":
        """Find label issues in ``(X, y)``; pass ``pred_probs`` (n, K) out-of-fold probabilities
        from your own model to skip the built-in cross-validation."""
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        seed = check_seed(self.random_state)
        X, y = check_features(X, y, min_per_class=self.cv_folds)
        if pred_probs is None and self.estimator is not None:
            P = out_of_fold_probabilities(X, y, self.estimator, self.cv_folds, seed)
        elif pred_probs is None:
            from sklearn.decomposition import PCA

            # the projection never sees a label, so fitting it once on all rows keeps the
            # probabilities out-of-fold for the labels (and saves a PCA per fold)
            Z = X
            if X.shape[1] > 40:
                Z = PCA(n_components=40, svd_solver="covariance_eigh", random_state=seed).fit_transform(X)
            P = knn_out_of_fold_probabilities(Z, y, self.cv_folds, seed, search=self.search)
        else:
            P = check_array(pred_probs, "pred_probs", min_ndim=2, max_ndim=2, dtype=np.float64)
            if len(P) != len(y):
                raise DataError(f"pred_probs has {len(P)} rows but there are {len(y)} samples")
            if P.shape[1] <= y.max():
                raise DataError(f"pred_probs has {P.shape[1]} columns but labels go up to {y.max()}")
        self.pred_probs_ = P
        issues = find_label_issues(labels=y, pred_probs=P, n_jobs=1)
        self.n_issues_ = int(issues.sum())
        quality = get_label_quality_scores(labels=y, pred_probs=P, method="self_confidence")
        self._calibrate(1.0 - np.asarray(quality, dtype=np.float64))
        self.evidence_ = calibrated_evidence(self.scores_, self.threshold_)
        return self
