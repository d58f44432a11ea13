"""Geometric median by smoothed Weiszfeld: RFA (Pillutla, Kakade & Harchaoui 2022)."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

from ..._validation import Interval
from ...registry import register
from .aggregate import geometric_median
from .basic import AggregationRule


@register("aggregator", "geometric_median")
class GeometricMedian(AggregationRule):
    """Geometric median of the client updates, by Weiszfeld (RFA: Pillutla, Kakade & Harchaoui
    2022, "Robust Aggregation for Federated Learning", IEEE Transactions on Signal Processing).

    Computed by the smoothed Weiszfeld algorithm: ``z <- sum_i beta_i u_i / sum_i beta_i`` with
    ``beta_i = w_i / max(nu, |z - u_i|)``, from the weighted mean, until a step moves the estimate
    by at most ``tol`` times its median distance to the updates, or ``max_iter`` iterations. Each
    iteration costs ``O(n^2)`` on the Gram matrix of the updates (computed once, ``O(n^2 d)``).

    Threat model: Byzantine clients holding less than half of the total weight; the geometric
    median has breakdown point 1/2 and needs no ``f``. Each client's pull on the result is a unit
    vector, whatever the size of its update.

    Parameters
    ----------
    nu : float > 0, default=1e-6
        Smoothing: distances below ``nu`` count as ``nu`` (keeps the iteration defined when the
        estimate sits on an update).
    max_iter : int >= 1, default=200
        Most Weiszfeld iterations (RFA uses a handful; here each costs ``O(n^2)``).
    tol : float >= 0, default=1e-6
        Stop when a step moves the estimate by at most ``tol`` times the median distance from the
        estimate to the updates (RFA's relative change of the objective stops early when one
        update is huge: that update's distance dominates the objective).

    Attributes
    ----------
    weights_ : ndarray of shape (n_clients,)
        The final convex weights ``beta_i / sum beta``: the result is ``weights_ @ updates`` (a huge
        update gets ~0).
    n_iter_ : int
        Weiszfeld iterations run this round.

    Notes
    -----
    Limits: with heterogeneous clients the geometric median sits near the majority's mode and
    ignores minorities; a colluding minority just inside the honest cloud still biases it by up
    to a constant times the honest spread.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import GeometricMedian
    >>> U = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1e6, 1e6]])
    >>> agg = GeometricMedian()
    >>> np.round(agg.aggregate(U), 2).tolist()
    [1.58, 1.58]
    >>> bool(agg.weights_[4] < 1e-5)
    True
    """

    uses_weights: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {
        "nu": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, *, nu: float = 1e-6, max_iter: int = 200, tol: float = 1e-6) -> None:
        self.nu = nu
        self.max_iter = max_iter
        self.tol = tol

    def _aggregate(self, U, w, **context: Any):
        z, c, n_iter = geometric_median(U, w, nu=float(self.nu), max_iter=int(self.max_iter),
                                        tol=float(self.tol), return_weights=True)
        self.n_iter_ = n_iter
        return z, c
