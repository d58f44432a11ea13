"""Bulyan (El Mhamdi, Guerraoui & Rouault 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

from ...registry import register
from .aggregate import bulyan
from .basic import BYZANTINE_F, AggregationRule


@register("aggregator", "bulyan")
class Bulyan(AggregationRule):
    """Bulyan, iterated Krum then a mean around the median (El Mhamdi, Guerraoui & Rouault 2018,
    "The Hidden Vulnerability of Distributed Learning in Byzantium", ICML).

    First ``theta = n - 2f`` updates are selected by Krum applied again and again to the updates
    not selected yet; then, per coordinate, the ``beta = theta - 2f`` selected values closest to
    their median are averaged. The second stage bounds what a selected attacker can do along any
    single coordinate, which Krum alone does not (the paper's "hidden vulnerability": an attacker
    that is close in L2 but far along one coordinate).

    Threat model: up to ``f`` colluding omniscient Byzantine clients with ``n >= 4f + 3``; refuses
    (:class:`~poisonlab.exceptions.AssumptionError`) when ``n < 4f + 3``. Non-finite updates are
    dropped first and charged to ``f`` (see
    :class:`~poisonlab.defenses.federated.basic.AggregationRule`).

    Parameters
    ----------
    f : int >= 0
        Number of Byzantine clients to tolerate.

    Attributes
    ----------
    weights_ : ndarray of shape (n_clients,)
        Each client's share of the kept values: the fraction of coordinates at which its value was
        among the ``beta`` averaged ones, divided by ``beta`` (sums to 1; 0 for clients Krum never
        selected).

    Notes
    -----
    Limits: needs many clients per attacker (``4f + 3``); discards ``n - beta = 4f`` values per
    coordinate even when nobody attacks; iterated Krum costs ``O(n^3)`` on top of the ``O(n^2 d)``
    distances. The paper leaves Krum's neighbour count undefined in the last selection steps
    (``r <= f + 2`` remaining updates); there the nearest remaining neighbour scores an update.
    Client weights are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import Bulyan
    >>> U = np.array([[0.0], [1.0], [2.0], [4.5], [8.0], [50.0], [-40.0]])
    >>> agg = Bulyan(f=1)
    >>> agg.aggregate(U).tolist()
    [1.0]
    >>> (agg.weights_ > 0).tolist()
    [True, True, True, False, False, False, False]
    """

    uses_weights: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {"f": BYZANTINE_F}

    def __init__(self, *, f: int) -> None:
        self.f = f

    def _aggregate(self, U, w, **context: Any):
        f_eff = self._effective_f(len(U), int(self.f), lambda n, f: n >= 4 * f + 3, "n >= 4f + 3")
        return bulyan(U, f_eff, return_weights=True)
