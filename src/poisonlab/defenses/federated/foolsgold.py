"""FoolsGold (Fung, Yoon & Beschastnikh 2020)."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np

from ..._validation import Interval
from ...exceptions import DataError
from ...registry import register
from .aggregate import foolsgold_weights, weighted_mean
from .basic import AggregationRule, _numeric


@register("aggregator", "foolsgold")
class FoolsGold(AggregationRule):
    """FoolsGold, down-weighting sybils with similar histories (Fung, Yoon & Beschastnikh 2020,
    "The Limitations of Federated Learning in Sybil Settings", RAID).

    The server keeps, per client, the sum of all its past updates. Each round it takes the
    cosine similarity of those histories, pardons honest clients that merely resemble a sybil
    (``cs_ij *= v_i / v_j`` where ``v_j > v_i``, ``v`` the largest similarity of each client),
    gives each client ``1 - max_j cs_ij``, rescales so the largest is 1, spreads the values with a
    logit of confidence ``kappa`` and clips them to [0, 1]. The aggregate is the mean of this
    round's updates weighted by these values (the paper uses them as per-client learning rates;
    here they are normalised to sum to 1 so the result is on the scale of one update).

    Threat model: sybils -- many clients controlled by one attacker pushing the same objective
    (label flipping, backdoors), hence sending similar updates round after round, while honest
    clients hold different (non-IID) data. It needs no bound on the number of sybils.

    Stateful: histories are kept across rounds, keyed by the ``client_ids`` given to
    :meth:`aggregate` (by position in ``updates`` when none are given, which is right only if the
    same clients come in the same order every round). :meth:`reset` forgets them.

    Parameters
    ----------
    kappa : float > 0, default=1.0
        The paper's confidence parameter ``kappa``: the slope of the logit that turns the rescaled
        similarities into weights (larger: closer to all-or-nothing).

    Attributes
    ----------
    weights_ : ndarray of shape (n_clients,)
        The FoolsGold weights normalised to sum to 1 (~0 for sybils).
    history_ : dict
        Client id -> the sum of its updates so far.

    Notes
    -----
    Limits: honest clients with similar data (IID) look like sybils and are down-weighted; a lone
    attacker is unlike everyone and keeps full weight however large its update (``robust =
    False``: clip the updates' norms before, as :class:`NormClipping` does); sybils that add
    enough independent noise, or that alternate objectives, evade it. The paper's optional feature-importance weighting (on the output layer) is not
    implemented: every parameter counts the same. Memory: one history vector per client ever
    seen. When every client has an exact twin the weights are all 0 and FoolsGold cannot rank
    them; the round then averages them equally.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import FoolsGold
    >>> U = np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    >>> agg = FoolsGold()
    >>> agg.aggregate(U, client_ids=["sybil-1", "sybil-2", "alice", "bob"]).tolist()
    [0.0, 0.0, 0.5, 0.5]
    >>> agg.weights_.tolist()
    [0.0, 0.0, 0.5, 0.5]
    """

    uses_weights: ClassVar[bool] = False
    robust: ClassVar[bool] = False
    accepts: ClassVar[tuple[str, ...]] = ("client_ids",)
    _parameter_constraints: ClassVar[dict] = {
        "kappa": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(self, *, kappa: float = 1.0) -> None:
        self.kappa = kappa

    def reset(self) -> "FoolsGold":
        """Forget every client's history."""
        self.__dict__.pop("history_", None)
        return self

    def aggregate(self, updates: Any, weights: Any = None, **context: Any) -> np.ndarray:
        U = _numeric(updates, "updates")
        if U.ndim == 2 and context.get("client_ids") is None:
            context["client_ids"] = np.arange(U.shape[0])  # ids by position, dropped ones included
        return super().aggregate(U, weights, **context)

    def _aggregate(self, U, w, *, client_ids: Any = None, **context: Any):
        history = getattr(self, "history_", None)
        if history is None:
            history = self.history_ = {}
        d = U.shape[1]
        if history and next(iter(history.values())).shape != (d,):
            raise DataError(f"FoolsGold saw updates of {next(iter(history.values())).shape[0]} parameters before "
                            f"and {d} now; call reset() to start a new run")
        ids = np.asarray(client_ids).tolist()  # plain Python ints / strs as keys
        for i, key in enumerate(ids):  # one vector addition per client: the history is a dict
            if key in history:
                history[key] += U[i]
            else:
                history[key] = U[i].copy()
        H = np.stack([history[key] for key in ids])
        alpha = foolsgold_weights(H, float(self.kappa))
        if alpha.sum() <= 0:  # everyone has an exact twin: nothing to rank them by
            alpha = np.ones(len(U))
        eff = alpha / alpha.sum()
        return weighted_mean(U, eff), eff
