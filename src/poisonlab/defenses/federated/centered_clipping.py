"""Centred clipping (Karimireddy, He & Jaggi 2021)."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np

from ..._validation import Interval
from ...exceptions import DataError
from ...registry import register
from .aggregate import centered_clipping
from .basic import AggregationRule


@register("aggregator", "centered_clipping")
class CenteredClipping(AggregationRule):
    """Centred clipping around the previous round's aggregate (Karimireddy, He & Jaggi 2021,
    "Learning from History for Byzantine Robust Optimization", ICML).

    ``n_iter`` times, ``v <- v + sum_i w_i clip_tau(u_i - v)`` with
    ``clip_tau(x) = x min(1, tau / |x|)``, starting from the aggregate this object returned last
    round (zeros in the first round, as in the authors' code). Each client moves the result by at
    most ``w_i tau`` per iteration, whatever it sends. The paper pairs it with client momentum;
    give it momentum updates for its guarantees.

    Threat model: a fraction ``delta < 1/2`` (by weight) of Byzantine clients that may collude;
    the rule needs no ``f``. Its error is ``O(delta sigma^2)`` when ``tau`` is of the order of the
    honest updates' spread ``sigma`` and the starting point is close to their mean.

    Stateful: the next round starts from this round's result; call :meth:`reset` to start a new
    training run (and when the parameter vector changes size).

    Parameters
    ----------
    tau : float > 0, default=10.0
        Clipping radius, in the units of the updates: set it to a few times the distance between
        an honest update and the aggregate.
    n_iter : int >= 1, default=3
        Clipping iterations per round (the paper's ``L``; its experiments use 1).

    Attributes
    ----------
    center_ : ndarray of shape (n_params,)
        The aggregate of the last round, where the next one starts.
    weights_ : ndarray of shape (n_clients,)
        Each client's share of the part of the result that comes from this round's updates (the
        result is ``s * start + a @ updates``; ``weights_ = a / sum(a)``; a clipped-away client
        gets ~0).

    Notes
    -----
    Limits: in the first round, or after a jump of the honest mean, the start is far from the
    honest updates and every one of them is clipped: the result moves by at most ``n_iter * tau``
    per round and lags behind. A Byzantine minority still moves the result by up to
    ``n_iter * tau * (its weight)`` per round in a direction of its choice.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import CenteredClipping
    >>> U = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> agg = CenteredClipping(tau=1.0, n_iter=1)
    >>> np.round(agg.aggregate(U), 6).tolist()   # (clip((0, 0)) + clip((3, 4))) / 2 = (0.6, 0.8) / 2
    [0.3, 0.4]
    >>> np.round(agg.aggregate(U), 6).tolist()   # the second round starts from (0.3, 0.4)
    [0.45, 0.6]
    """

    uses_weights: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {
        "tau": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, *, tau: float = 10.0, n_iter: int = 3) -> None:
        self.tau = tau
        self.n_iter = n_iter

    def reset(self) -> "CenteredClipping":
        """Forget the previous aggregate: the next round starts from zeros."""
        self.__dict__.pop("center_", None)
        return self

    def _aggregate(self, U, w, **context: Any):
        d = U.shape[1]
        start = getattr(self, "center_", None)
        if start is None:
            start = np.zeros(d)
        elif start.shape != (d,):
            raise DataError(f"CenteredClipping saw updates of {start.shape[0]} parameters last round and "
                            f"{d} now; call reset() to start a new run")
        v, share = centered_clipping(U, w, start, tau=float(self.tau), n_iter=int(self.n_iter),
                                     return_weights=True)
        self.center_ = v.copy()
        return v, share
