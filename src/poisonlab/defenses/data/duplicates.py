"""Duplicates and near-duplicates that carry conflicting labels."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, check_array, check_labels
from ...base import CONTAMINATION_OR_AUTO, BaseDetector
from ...exceptions import InvalidParameterError
from ...registry import register
from .evidence import calibrated_evidence


def duplicate_groups(X: np.ndarray, radius: float) -> np.ndarray:
    """Group id per row: rows equal (``radius == 0``, by hashing their bytes) or within
    ``radius`` (Euclidean, connected components of the radius graph) share a group."""
    if radius == 0:
        rows = np.ascontiguousarray(X).view(np.dtype((np.void, X.dtype.itemsize * X.shape[1])))
        return np.unique(rows.ravel(), return_inverse=True)[1].ravel()
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import radius_neighbors_graph

    graph = radius_neighbors_graph(X, radius, mode="connectivity", include_self=False)
    return connected_components(graph, directed=False)[1]


def conflict_fraction(groups: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """For each row, the fraction of the *other* members of its group whose label differs
    (0 for a row without duplicates). Vectorised with a group x class count table."""
    n_groups = int(groups.max()) + 1
    table = np.zeros((n_groups, n_classes), dtype=np.int64)
    np.add.at(table, (groups, y), 1)
    size = table.sum(axis=1)[groups]
    same = table[groups, y]
    others = size - 1
    return np.where(others > 0, (size - same) / np.maximum(others, 1), 0.0)


@register("detector", "duplicates")
class DuplicateConflicts(BaseDetector):
    """Exact or near duplicates whose labels disagree.

    A copy of an input under a different label is the simplest label-flip poison (and a common
    crowd-labelling accident). Each sample's score is the fraction of its duplicates labelled
    differently; with ``contamination="auto"`` every sample with any conflicting copy is
    flagged. ``groups_`` gives the duplicate group of each sample.

    Threat model: an attacker (or a careless source) re-submits existing inputs with other labels.

    Parameters
    ----------
    radius : float, default=0.0
        0 finds exact duplicates (hashing, linear time); a positive radius finds near duplicates
        within that Euclidean distance (a radius-neighbour graph).
    contamination : "auto" or float, default="auto"

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.data import DuplicateConflicts
    >>> X = np.array([[0, 1], [0, 1], [2, 2], [3, 3]]); y = np.array([0, 1, 1, 1])
    >>> DuplicateConflicts().fit(X, y).flags_.tolist()
    [True, True, False, False]
    """

    stage = "data"
    unit = "sample"
    family = "duplicate"

    _parameter_constraints = {
        "radius": [Interval(numbers.Real, 0, None, closed="left")],
        "contamination": CONTAMINATION_OR_AUTO,
    }

    def __init__(self, *, radius: float = 0.0, contamination: Any = "auto") -> None:
        self.radius = radius
        self.contamination = contamination

    def _auto_threshold(self, scores: np.ndarray) -> float:
        return 0.0

    def fit(self, X: Any, y: Any) -> "DuplicateConflicts":
        """Find duplicate groups among rows of ``X`` (inputs or features, flattened), or among
        texts (a 1-D array of str: exact copies after whitespace normalisation)."""
        arr = np.asarray(X)
        if arr.ndim == 1 and arr.dtype.kind in "OUS":
            if self.radius:
                raise InvalidParameterError("radius must be 0 for texts (exact duplicates only)")
            texts = np.array([" ".join(str(t).split()) for t in arr])
            y = check_labels(y, len(texts))
            self.groups_ = np.unique(texts, return_inverse=True)[1].ravel()
        else:
            X = check_array(X, "X", min_ndim=2)
            X = X.reshape(len(X), -1)
            y = check_labels(y, len(X))
            self.groups_ = duplicate_groups(X, float(self.radius))
        self._calibrate(conflict_fraction(self.groups_, y, int(y.max()) + 1))
        self.evidence_ = calibrated_evidence(self.scores_, self.threshold_)
        return self
