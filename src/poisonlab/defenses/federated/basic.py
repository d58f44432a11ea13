"""The two reference aggregation rules: the mean everyone starts from, and the coordinate median."""

from __future__ import annotations

import numpy as np

from ...base import BaseAggregator
from ...registry import register


def weighted_mean(U: np.ndarray, w: np.ndarray) -> np.ndarray:
    """FedAvg (McMahan et al. 2017, eq. in Algorithm 1): ``sum_k w_k u_k`` with ``sum w = 1``."""
    return w @ U


def coordinate_median(U: np.ndarray) -> np.ndarray:
    """Coordinate-wise median (Yin et al. 2018, Definition 1): the median of each parameter."""
    return np.median(U, axis=0)


@register("aggregator", "fedavg")
class FedAvg(BaseAggregator):
    """Federated averaging (McMahan et al. 2017): the weighted mean of client updates.

    No defense: a single client can move the aggregate arbitrarily far (the baseline every
    robust rule is compared with).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import FedAvg
    >>> FedAvg().aggregate(np.array([[0.0, 2.0], [2.0, 4.0]])).tolist()
    [1.0, 3.0]
    """

    _parameter_constraints: dict = {}

    def __init__(self) -> None:
        pass

    def _aggregate(self, U, w, **context):
        return weighted_mean(U, w), w.copy()


@register("aggregator", "median")
class CoordinateMedian(BaseAggregator):
    """Coordinate-wise median (Yin, Chen, Ramchandran & Bartlett 2018, "Byzantine-Robust
    Distributed Learning: Towards Optimal Statistical Rates").

    Robust while fewer than half the clients are Byzantine, per coordinate. Client weights are
    ignored (the median is unweighted, as in the paper); ``weights_`` reports, per client, the
    fraction of coordinates at which its value was the median (for an odd number of clients).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import CoordinateMedian
    >>> CoordinateMedian().aggregate(np.array([[0.0], [1.0], [100.0]])).tolist()
    [1.0]
    """

    uses_weights = False
    _parameter_constraints: dict = {}

    def __init__(self) -> None:
        pass

    def _aggregate(self, U, w, **context):
        med = coordinate_median(U)
        hits = np.isclose(U, med[None, :]).mean(axis=1)
        eff = hits / hits.sum() if hits.sum() > 0 else np.full(len(U), 1.0 / len(U))
        return med, eff
