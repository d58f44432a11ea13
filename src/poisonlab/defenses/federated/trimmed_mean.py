"""Coordinate-wise trimmed mean (Yin, Chen, Ramchandran & Bartlett 2018)."""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

from ..._validation import Interval
from ...exceptions import InvalidParameterError
from ...registry import register
from .aggregate import trimmed_mean
from .basic import AggregationRule


@register("aggregator", "trimmed_mean")
class TrimmedMean(AggregationRule):
    """Coordinate-wise trimmed mean, f values cut at each end (Yin, Chen, Ramchandran &
    Bartlett 2018, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates",
    Definition 2).

    Per coordinate, the ``f`` largest and ``f`` smallest client values are dropped and the
    ``n - 2f`` others averaged (unweighted, as in the paper).

    Threat model: up to ``f`` Byzantine clients, who may send anything, with ``2f < n``; refuses
    (:class:`~poisonlab.exceptions.AssumptionError`) otherwise. Non-finite updates are dropped
    first and charged to ``f`` (see :class:`~poisonlab.defenses.federated.basic.AggregationRule`).

    Parameters
    ----------
    f : int >= 0 or None, default=None
        Values to trim from each end of every coordinate (the number of Byzantine clients).
    beta : float in [0, 0.5) or None, default=None
        Or a fraction: trim ``floor(beta * n)`` from each end (Flower's ``FedTrimmedAvg``).
        Give exactly one of ``f`` and ``beta``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_clients,)
        Each client's share: the fraction of coordinates at which its value was kept, divided by
        ``n - 2f`` (sums to 1; 0 for a client trimmed everywhere or dropped).
    excluded_ : ndarray of bool
        Clients whose value was kept at no coordinate.

    Notes
    -----
    Limits: the error grows with the honest spread per coordinate; attacks that stay just inside
    it (ALIE, Baruch et al. 2019; min-max, Shejwalkar & Houmansadr 2021) move the result by up to
    ``f / (n - 2f)`` of that spread per coordinate. Client weights are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import TrimmedMean
    >>> U = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, -30.0], [100.0, 40.0]])
    >>> agg = TrimmedMean(f=1)
    >>> agg.aggregate(U).tolist()
    [2.5, 15.0]
    >>> agg.weights_.tolist()
    [0.25, 0.5, 0.25, 0.0]
    """

    uses_weights: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        "f": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "beta": [Interval(numbers.Real, 0, 0.5, closed="left"), None],
    }

    def __init__(self, *, f: int | None = None, beta: float | None = None) -> None:
        self.f = f
        self.beta = beta

    def _aggregate(self, U, w, **context: Any):
        if (self.f is None) == (self.beta is None):
            raise InvalidParameterError(f"TrimmedMean needs exactly one of f (a count) or beta (a fraction); "
                                        f"got f={self.f!r}, beta={self.beta!r}")
        n_given = len(U) + self._n_nonfinite
        f = int(self.f) if self.f is not None else int(math.floor(self.beta * n_given))
        f_eff = self._effective_f(len(U), f, lambda n, f: 2 * f < n, "2f < n")
        return trimmed_mean(U, f_eff, return_weights=True)
