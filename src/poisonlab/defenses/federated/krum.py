"""Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui & Stainer 2017)."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np

from ..._validation import Interval
from ...exceptions import AssumptionError
from ...registry import register
from .aggregate import krum, multi_krum, pairwise_sq_distances, weighted_mean
from .aggregate import krum_scores
from .basic import BYZANTINE_F, AggregationRule

_KRUM_RULE = "n > 2f + 2"


def _krum_holds(n: int, f: int) -> bool:
    return n > 2 * f + 2


@register("aggregator", "krum")
class Krum(AggregationRule):
    """Krum, the update closest to its n - f - 2 neighbours (Blanchard, El Mhamdi,
    Guerraoui & Stainer 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient
    Descent", NeurIPS).

    Each update ``u_i`` is scored by the sum of squared distances to its ``n - f - 2`` nearest
    neighbours; the update with the lowest score is the aggregate. No averaging: one client's
    update (an honest one, under the assumption) becomes the global step.

    Threat model: up to ``f`` Byzantine clients that may collude and see every honest update,
    with ``n > 2f + 2``; refuses (:class:`~poisonlab.exceptions.AssumptionError`) when
    ``n <= 2f + 2``. Non-finite updates are dropped first and charged to ``f`` (see
    :class:`~poisonlab.defenses.federated.basic.AggregationRule`).

    Parameters
    ----------
    f : int >= 0
        Number of Byzantine clients to tolerate.

    Attributes
    ----------
    weights_ : ndarray of shape (n_clients,)
        One-hot on the chosen client.
    scores_ : ndarray of shape (n_clients,)
        Krum scores this round (``inf`` for dropped clients).

    Notes
    -----
    Limits: keeps one update, so the step has the variance of a single client (slow, noisy
    training with non-IID clients); attackers who place their updates close to each other and to
    the honest ones win the selection (Fang et al. 2020; ALIE, Baruch et al. 2019). Client
    weights are ignored. Exact ties go to the update with the smaller total squared distance
    to the others.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import Krum
    >>> U = np.array([[0.0], [1.0], [3.0], [10.0]])
    >>> agg = Krum(f=0)
    >>> agg.aggregate(U).tolist()
    [1.0]
    >>> agg.scores_.tolist()
    [10.0, 5.0, 13.0, 130.0]
    >>> agg.weights_.tolist()
    [0.0, 1.0, 0.0, 0.0]
    """

    uses_weights: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {"f": BYZANTINE_F}

    def __init__(self, *, f: int) -> None:
        self.f = f

    def _aggregate(self, U, w, **context: Any):
        f_eff = self._effective_f(len(U), int(self.f), _krum_holds, _KRUM_RULE)
        D = pairwise_sq_distances(U)
        self._report("scores_", krum_scores(U, f_eff, sq_dists=D), np.inf)
        best = krum(U, f_eff, sq_dists=D)
        eff = np.zeros(len(U))
        eff[best] = 1.0
        return U[best].copy(), eff


@register("aggregator", "multi_krum")
class MultiKrum(AggregationRule):
    """Multi-Krum, the mean of the m best-scored updates (Blanchard,
    El Mhamdi, Guerraoui & Stainer 2017, "Machine Learning with Adversaries: Byzantine Tolerant
    Gradient Descent", Section 5).

    Krum scores are computed once on all ``n`` updates; the ``m`` best are averaged, weighted by
    the client weights renormalised over them (sample counts, as Flower's Multi-Krum does; the
    paper averages them equally, which is ``weights=None``).

    Threat model: up to ``f`` Byzantine clients with ``n > 2f + 2`` and ``m <= n - f``; refuses
    (:class:`~poisonlab.exceptions.AssumptionError`) otherwise. Non-finite updates are dropped
    first and charged to ``f`` (see
    :class:`~poisonlab.defenses.federated.basic.AggregationRule`).

    Parameters
    ----------
    f : int >= 0
        Number of Byzantine clients to tolerate.
    m : int >= 1 or None, default=None
        How many updates to average; None means ``n - f`` (every update the assumption allows;
        ``n - k - f_eff`` after dropping ``k`` non-finite updates, the same when ``k <= f``).
        ``m = 1`` is Krum.

    Attributes
    ----------
    weights_ : ndarray of shape (n_clients,)
        The client weights renormalised over the ``m`` selected clients, 0 elsewhere.
    scores_ : ndarray of shape (n_clients,)
        Krum scores this round (``inf`` for dropped clients).

    Notes
    -----
    Limits: as Krum, attackers close to the honest cloud are selected; with ``m = n - f`` and no
    attacker present, the ``f`` honest updates with the worst scores are discarded every round.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import MultiKrum
    >>> U = np.array([[0.0], [1.0], [3.0], [10.0]])
    >>> agg = MultiKrum(f=0, m=2)
    >>> agg.aggregate(U).tolist()
    [0.5]
    >>> agg.weights_.tolist()
    [0.5, 0.5, 0.0, 0.0]
    """

    uses_weights: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {
        "f": BYZANTINE_F,
        "m": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(self, *, f: int, m: int | None = None) -> None:
        self.f = f
        self.m = m

    def _aggregate(self, U, w, **context: Any):
        f = int(self.f)
        f_eff = self._effective_f(len(U), f, _krum_holds, _KRUM_RULE)
        n = len(U) + self._n_nonfinite
        if self.m is None:  # every update the assumption allows among those left
            m = len(U) - f_eff
        else:
            m = int(self.m)
        if m > n - f:
            raise AssumptionError(f"MultiKrum needs m <= n - f; got n={n}, f={f}, m={m}")
        if m > len(U) - f_eff:
            raise AssumptionError(f"MultiKrum needs m <= n - f; dropping {self._n_nonfinite} non-finite "
                                  f"update(s) leaves n={len(U)}, f={f_eff}, m={m}")
        D = pairwise_sq_distances(U)
        self._report("scores_", krum_scores(U, f_eff, sq_dists=D), np.inf)
        chosen = multi_krum(U, f_eff, m, sq_dists=D)
        eff = np.zeros(len(U))
        eff[chosen] = w[chosen] / w[chosen].sum()
        return weighted_mean(U, eff), eff
