"""Activation clustering (Chen et al. 2018)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options, check_array, check_seed
from ...base import CONTAMINATION_OR_AUTO, BaseDetector
from ...exceptions import DataError
from ...registry import register
from ._clustering import pca_scores, silhouette, two_means, whiten
from ._perclass import check_features
from .evidence import MIN_CLASSES, calibrated_evidence


def cluster_scores(minority: np.ndarray, size_fraction: float, silhouette: float,
                   size_threshold: float, silhouette_threshold: float) -> np.ndarray:
    """Scores for one class whose 2-means split put ``minority`` in the smaller cluster.

    ``min(silhouette / s_thr, (1 - size) / (1 - size_thr))`` for minority members, 0 otherwise.
    The score exceeds 1 exactly when both of the paper's tests pass: the smaller cluster holds
    less than ``size_threshold`` of the class *and* the split is well separated (silhouette above
    ``silhouette_threshold``). So the paper's rule is the threshold 1.
    """
    s = min(silhouette / silhouette_threshold, (1.0 - size_fraction) / (1.0 - size_threshold))
    return np.where(minority, max(s, 0.0), 0.0)


def class_outlyingness(values: np.ndarray) -> np.ndarray:
    """For each class, how far its value lies above the *other* classes' values, in robust
    standard deviations: ``(v_c - median(v_-c)) / (1.4826 MAD(v_-c))`` (the MAD floored at 1% of
    the median's magnitude, so a tie of the others does not divide by zero).

    Activation clustering calibrated on its own statistics: the silhouette of a clean class's
    2-means split depends on the data and the model (0.07-0.20 on digits' features, where
    the paper's threshold is 0.10-0.15), so a poisoned class is one whose split is better
    separated than the *typical* class's, not than a fixed number.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros(len(v))
    for i in range(len(v)):
        rest = np.delete(v, i)
        med = float(np.median(rest))
        mad = 1.4826 * float(np.median(np.abs(rest - med)))
        out[i] = (v[i] - med) / max(mad, 0.01 * abs(med), 1e-12)
    return out


def excess_share(sizes: np.ndarray) -> np.ndarray:
    """For each class, the share of it beyond the typical class's size:
    ``1 - median(other sizes) / size`` (0 when not larger). An all-to-one attack that adds
    ``n_p`` poisons to a class of ``n`` makes it ``n_p / (n + n_p)`` excess: a class twice the
    typical size is half poison."""
    sizes = np.asarray(sizes, dtype=np.float64)
    out = np.zeros(len(sizes))
    for i in range(len(sizes)):
        out[i] = max(0.0, 1.0 - float(np.median(np.delete(sizes, i))) / sizes[i])
    return out


def input_disagreement(view: np.ndarray, y: np.ndarray, members: np.ndarray, c: int, n_neighbors: int = 10) -> float:
    """Mean share of the ``n_neighbors`` nearest samples (self excluded, every sample a
    candidate) of ``members`` whose label is not ``c``, in ``view`` (the inputs). Of the two
    halves of a class split 50/50, the poisons' inputs agree less with the label than the clean
    samples' (even when a trigger makes the poisons each other's neighbours)."""
    from sklearn.neighbors import NearestNeighbors

    rows = np.flatnonzero(members)
    if len(rows) == 0:
        return 0.0
    k = min(n_neighbors + 1, len(y))
    idx = NearestNeighbors(n_neighbors=k).fit(view).kneighbors(view[rows], return_distance=False)
    own = idx == rows[:, None]
    other = (y[idx] != c) & ~own
    return float((other.sum(axis=1) / np.maximum((~own).sum(axis=1), 1)).mean())


def relabelled_fraction(view: np.ndarray, y: np.ndarray, cluster: np.ndarray, c: int, n_neighbors: int = 10) -> float:
    """Exclusionary reclassification by nearest neighbours (Chen et al. 2018, Sec. 4.3, with a
    k-NN classifier): the share of ``cluster``'s members whose ``n_neighbors`` nearest samples
    *outside the cluster*, in ``view`` (the inputs, not the suspected model's features), vote
    for a class other than ``c``. Dirty-label poisons are other classes' inputs: they are
    voted back to where they came from; a clean class's odd mode keeps its own label."""
    from sklearn.neighbors import NearestNeighbors

    rest = np.flatnonzero(~cluster)
    if len(rest) == 0 or not cluster.any():
        return 0.0
    k = min(n_neighbors, len(rest))
    idx = NearestNeighbors(n_neighbors=k).fit(view[rest]).kneighbors(view[cluster], return_distance=False)
    votes = y[rest][idx]
    n_classes = int(y.max()) + 1
    counts = np.zeros((len(votes), n_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(votes)), k), votes.ravel()), 1)
    return float(np.mean(counts.argmax(axis=1) != c))


@register("detector", "activation_clustering")
class ActivationClustering(BaseDetector):
    """Activation clustering (Chen, Carvalho, Baracaldo, Ludwig, Edwards, Lee, Molloy & Srivastava
    2018, "Detecting Backdoor Attacks on Deep Neural Networks by Activation Clustering").

    For each class: reduce the last hidden layer's activations to ``n_components`` dimensions
    (ICA, as the paper, or PCA), split them with 2-means, and call the smaller cluster poisoned
    when it is small (relative size below ``size_threshold``) and well separated (silhouette
    above ``silhouette_threshold``). A clean class splits into two similar-sized or overlapping
    halves; a poisoned one into its clean samples and a tight cluster of poisons.

    Threat model: dirty-label backdoors whose poisons the model classifies "because of the
    trigger", so their activations differ from the target class's own.

    Parameters
    ----------
    n_components : int, default=10
    reduction : {"ica", "pca"}, default="ica"
    size_threshold : float in (0, 0.5], default=0.35
    silhouette_threshold : float in (0, 1), default=0.15
        ART's default is 0.10. On MNIST penultimate activations the 2-means split of a *clean*
        class has silhouette 0.08-0.12 (those classes were the false positives at 0.10), the
        poisoned class 0.26-0.39; 0.15 separates them.
    contamination : "auto" or float, default="auto"
        "auto" applies the paper's rule (threshold 1 on the scores); a number flags that fraction.
    class_z : float or None, default=None
        Calibrate the silhouette test on the classes themselves: a class passes only when its
        silhouette also lies ``class_z`` robust standard deviations above the other classes'
        (:func:`class_outlyingness`). With fewer than
        :data:`~poisonlab.defenses.data.evidence.MIN_CLASSES` (4) classes there is nothing to
        calibrate on and no class is flagged. None: the paper's fixed threshold alone. The
        default scan uses 3.
    confirm_threshold : float in (0, 1), default=0.5
        With ``fit(..., inputs=...)``: the paper's exclusionary reclassification confirms a
        flagged class when more than this share of its smaller cluster is classified as another
        class by a k-NN on the inputs without the cluster (:func:`relabelled_fraction`). With
        ``class_z`` too, a class at least a third larger than the typical class (:attr:`EXCESS`
        of it in excess, :func:`excess_share`) is also flagged when its smaller cluster holds at
        least half that excess and is confirmed so, whatever the cluster's size and silhouette:
        all-to-one poisoning at 10% of a 10-class set makes the target class half poison, which
        the size test (and, in whitened coordinates, the paper's silhouette threshold) cannot
        pass. Of the two clusters the candidate is the one whose inputs agree less with the
        label (:func:`input_disagreement`), not the smaller: at a 50/50 split 2-means may call
        the clean half the smaller (digits under Blended), and with every clean sample of the
        class excluded the inputs vote the clean half to other classes too.
    random_state : int, Generator or None, default=0
        Seeds ICA and k-means (never unseeded).

    Notes
    -----
    The reduction, 2-means and silhouette are small vectorised functions
    (:mod:`poisonlab.defenses.data._clustering`). ICA's rotation is not computed: FastICA's
    unit-variance sources are the whitened PCA scores rotated, and 2-means and the silhouette
    only see distances, so they cluster identically. 2-means runs 30 seeded greedy k-means++
    starts on 2,000 sampled activations and finishes the best 5 on all; the silhouette is
    measured on 1,000 sampled activations.

    Attributes
    ----------
    class_report_ : dict
        Per class: relative size of the smaller cluster, silhouette (and its outlyingness among
        the classes, the share of the cluster reclassified, when computed), and the verdict.
    evidence_ : ndarray
        The scores as calibrated evidence (:func:`~poisonlab.defenses.data.evidence.calibrated_evidence`):
        the scores themselves, since the rule's threshold is 1 and most scores are 0.

    Limits
    ------
    Every flagged class loses its whole smaller cluster; a class whose clean data is naturally
    bimodal can be flagged (use :meth:`exclusionary_reclassification` to confirm). Needs enough
    poisons to form a cluster (the paper's MNIST runs use 10-33% of the target class). In the
    whitened (ICA) coordinates a cluster holding a fraction ``p`` of its class lies only
    ``1 / sqrt(p (1 - p))`` standard deviations away along its direction, so a large poison
    fraction lowers the silhouette: with isotropic clean activations a 20% cluster scores about
    0.13 and is missed at the default threshold (``reduction="pca"`` keeps the raw spread).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.data import ActivationClustering
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(300, 12)); A[:30] += 5
    >>> det = ActivationClustering(reduction="pca").fit(A, np.zeros(300, int))
    >>> int(det.flags_[:30].sum()), int(det.flags_[30:].sum())
    (30, 0)
    """

    stage = "data"
    unit = "sample"
    family = "cluster"
    #: Share of a class beyond the typical class's size from which, with ``inputs`` and
    #: ``class_z``, a smaller cluster of about that share confirmed by reclassification is
    #: flagged whatever its size and silhouette (poisons half of their class).
    EXCESS = 0.25

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "reduction": [Options(("ica", "pca"))],
        "size_threshold": [Interval(numbers.Real, 0, 0.5, closed="right")],
        "silhouette_threshold": [Interval(numbers.Real, 0, 1, closed="neither")],
        "contamination": CONTAMINATION_OR_AUTO,
        "class_z": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "confirm_threshold": [Interval(numbers.Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, n_components: int = 10, reduction: str = "ica", size_threshold: float = 0.35,
                 silhouette_threshold: float = 0.15, contamination: Any = "auto", class_z: float | None = None,
                 confirm_threshold: float = 0.5, random_state: Any = 0) -> None:
        self.n_components = n_components
        self.reduction = reduction
        self.size_threshold = size_threshold
        self.silhouette_threshold = silhouette_threshold
        self.contamination = contamination
        self.class_z = class_z
        self.confirm_threshold = confirm_threshold
        self.random_state = random_state

    def _auto_threshold(self, scores: np.ndarray) -> float:
        return 1.0

    def _reduce(self, A: np.ndarray) -> np.ndarray:
        """PCA to at most ``n_components`` non-degenerate directions (dead ReLU units would make
        whitening singular); for "ica", whitened: the ICA components up to a rotation, which
        2-means and the silhouette cannot see (see :func:`._clustering.whiten`)."""
        Z = pca_scores(A, min(self.n_components, len(A) - 1))
        return Z if self.reduction == "pca" else whiten(Z)

    def fit(self, X: Any, y: Any, *, inputs: Any = None) -> "ActivationClustering":
        """Cluster activations ``X`` (n, d) of each class of ``y``; with ``inputs`` (n, ...),
        confirm each flagged class by exclusionary reclassification on them (a k-NN on the
        flattened inputs, or any representation *not* learnt from this data)."""
        seed = check_seed(self.random_state)
        X, y = check_features(X, y, min_per_class=3)
        view = None
        if inputs is not None:
            view = check_array(inputs, "inputs", min_ndim=2, dtype=np.float64)
            if len(view) != len(y):
                raise DataError(f"inputs has {len(view)} rows but X has {len(y)}")
            view = view.reshape(len(y), -1)
        scores = np.zeros(len(y))
        clusters = np.zeros(len(y), dtype=np.int64)
        report, splits = {}, {}
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            Z = self._reduce(X[idx].astype(np.float64))
            labels = two_means(Z, seed=seed)
            sil = silhouette(Z, labels, sample_size=1000, seed=seed)
            sizes = np.bincount(labels, minlength=2)
            small = int(np.argmin(sizes))
            frac = sizes[small] / len(idx)
            minority = labels == small
            splits[int(c)] = (idx, minority, frac, sil)
            clusters[idx] = np.where(minority, 1, 0)
        classes = sorted(splits)
        outlying, excess = None, {}
        if self.class_z is not None:
            # too few classes to calibrate on: no class can stand out, nothing is flagged
            enough = len(classes) >= MIN_CLASSES
            outlying = dict(zip(classes, class_outlyingness(np.array([splits[c][3] for c in classes]))
                                if enough else np.zeros(len(classes))))
            if enough:
                sizes = np.array([len(splits[c][0]) for c in classes], dtype=np.float64)
                excess = dict(zip(classes, excess_share(sizes)))
        for c in classes:
            idx, minority, frac, sil = splits[c]
            s = cluster_scores(minority, frac, sil, self.size_threshold, self.silhouette_threshold)
            rep = {"smaller_cluster_fraction": float(frac), "silhouette": float(sil)}
            if outlying is not None:
                # the silhouette must also stand out among the classes: min(rule, z / class_z)
                rep["silhouette_outlyingness"] = float(outlying[c])
                s = np.minimum(s, max(outlying[c], 0.0) / self.class_z)
            if view is not None and s.max() > 1.0:
                cluster = np.zeros(len(y), dtype=bool)
                cluster[idx[minority]] = True
                share = relabelled_fraction(view, y, cluster, c)
                rep["reclassified_share"] = share
                s = np.minimum(s, share / self.confirm_threshold)
            if view is not None and excess.get(c, 0.0) >= self.EXCESS:
                # all-to-one poisoning at a high rate: the class is larger than the others by
                # about one of its two clusters, which the inputs vote back to other classes. At
                # a near 50/50 split "the smaller" is a coin toss: the candidate is the half
                # whose inputs agree less with the label
                e = excess[c]
                halves = [minority, ~minority]
                member = [np.zeros(len(y), dtype=bool) for _ in halves]
                for m_, h in zip(member, halves):
                    m_[idx[h]] = True
                dis = [input_disagreement(view, y, m_, c) for m_ in member]
                pick = int(np.argmax(dis))
                share = relabelled_fraction(view, y, member[pick], c)
                part = float(halves[pick].mean())
                rep.update(excess_share=float(e), excess_cluster_fraction=part, excess_reclassified_share=share)
                alt = min(share / self.confirm_threshold, e / self.EXCESS, part / (e / 2))
                s = np.maximum(s, np.where(halves[pick], alt, 0.0))
            rep["poisoned"] = bool(s.max() > 1.0)
            scores[idx] = s
            report[c] = rep
        self.class_report_ = report
        self.minority_ = clusters.astype(bool)
        self._calibrate(scores)
        self.evidence_ = calibrated_evidence(self.scores_, self.threshold_)
        return self

    def exclusionary_reclassification(self, X: Any, y: Any, *, estimator: Any = None) -> dict[int, bool]:
        """Confirm flagged classes (the paper's section 4.3): train ``estimator`` without a
        class's smaller cluster, classify that cluster, and call it poisoned when most of it is
        assigned to *another* class.

        ``X`` must be the training *inputs* (flattened), or features of a model that was *not*
        trained on this data. The backdoored model's own activations encode the trigger as the
        target class, so a classifier trained on them vouches for the poison: on BadNets MNIST
        features it answered "legitimate" for a cluster that was 99% poison. Default estimator:
        logistic regression.

        Returns ``{class: confirmed}`` for each class flagged by ``fit``.
        """
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression

        from ..._validation import check_is_fitted

        check_is_fitted(self, "minority_")
        X = np.asarray(X)
        X, y = check_features(X.reshape(len(X), -1), y)
        est = estimator if estimator is not None else LogisticRegression(max_iter=500)
        out = {}
        for c, rep in self.class_report_.items():
            if not rep["poisoned"]:
                continue
            cluster = self.minority_ & (y == c)
            model = clone(est).fit(X[~cluster], y[~cluster])
            pred = model.predict(X[cluster])
            out[c] = bool(np.mean(pred != c) > 0.5)
        return out
