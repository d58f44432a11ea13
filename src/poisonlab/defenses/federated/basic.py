"""The two reference aggregation rules (the mean everyone starts from, and the coordinate median),
and :class:`AggregationRule`, what every rule of this package shares (how ``n`` and ``f`` are
counted when non-finite updates are dropped)."""

from __future__ import annotations

import numbers
from typing import Any, Callable, ClassVar

import numpy as np

from ..._validation import Interval
from ...base import BaseAggregator
from ...exceptions import AssumptionError, DataError
from ...registry import register
from .aggregate import coordinate_median, weighted_mean

def _numeric(x: Any, name: str, dtype: Any = None) -> np.ndarray:
    """``x`` as an array, or a DataError naming ``name`` (a ragged list, text weights)."""
    try:
        return np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be a rectangular numeric array: {str(exc).splitlines()[0]}") from exc


def _check_client_ids(ids: Any, n: int) -> np.ndarray:
    """One unique id per client update, or a DataError."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"client_ids has shape {arr.shape} but there are {n} client updates")
    if len(set(arr.tolist())) != n:
        raise DataError("client_ids must be unique: one id per client update")
    return arr


#: Declared constraint of ``f``, the number of Byzantine clients a rule is asked to tolerate.
BYZANTINE_F = [Interval(numbers.Integral, 0, None, closed="left")]


class AggregationRule(BaseAggregator):
    """Base of poisonlab's aggregation rules: what they share on top of
    :class:`~poisonlab.base.BaseAggregator`.

    * Inputs that cannot be read as numbers (ragged lists of updates, text weights) and
      ``client_ids`` that are not one unique id per update are refused with a
      :class:`~poisonlab.exceptions.DataError`.
    * Per-client attributes a rule computes on the clients it saw (Krum's ``scores_``, FLTrust's
      ``trust_scores_``) are reported for every client given, dropped ones included.
    * ``robust`` declares whether one client sending an arbitrarily large update cannot drag the
      aggregate out of the honest clients' cloud; the contract tests check the claim.

    How ``n`` and ``f`` are counted, for every rule that tolerates up to ``f`` Byzantine clients
    out of ``n``: ``n`` is the number of clients given a positive weight (all of them when
    ``weights`` is None). The base class drops a client whose update holds a NaN or an infinity
    before the rule runs; such a client is taken to be one of the Byzantine ones, so after
    dropping ``k`` of them the rule runs on the ``n - k`` others with ``f_eff = max(f - k, 0)``.
    The rule's assumption (Krum: ``n > 2f + 2``, ...) is checked on the ``n`` and ``f`` given -- a
    round does not become acceptable because an attacker sent NaN -- and, when more than ``f``
    clients were dropped, also on the ``n - k`` clients left with ``f_eff = 0``. A client given
    weight 0 is not part of the round: it is neither counted in ``n`` nor charged to ``f``.
    """

    #: Whether one client sending an arbitrarily large update cannot drag the aggregate out of
    #: the honest clients' cloud (the contract tests check it).
    robust: ClassVar[bool] = True

    def aggregate(self, updates: Any, weights: Any = None, **context: Any) -> np.ndarray:
        updates = _numeric(updates, "updates")
        if context.get("client_ids") is not None and updates.ndim == 2:
            context["client_ids"] = _check_client_ids(context["client_ids"], updates.shape[0])
        self._n_zero_weight = 0
        if weights is not None:
            weights = _numeric(weights, "weights", dtype=np.float64)
            self._n_zero_weight = int(np.count_nonzero(weights == 0)) if weights.ndim == 1 else 0
        self._per_client: dict[str, tuple[np.ndarray, float]] = {}
        out = super().aggregate(updates, weights, **context)
        if self._per_client:
            kept = self._kept_mask(updates, weights)
            for name, (values, fill) in self._per_client.items():
                full = np.full(len(kept), fill, dtype=np.float64)
                full[kept] = values
                setattr(self, name, full)
            self._per_client = {}
        return out

    def _kept_mask(self, updates: Any, weights: Any) -> np.ndarray:
        """Which of the given clients reached ``_aggregate`` (finite update, positive weight)."""
        U = np.asarray(updates)
        n = U.shape[0]
        if not getattr(self, "n_dropped_", 0):
            return np.ones(n, dtype=bool)
        kept = np.ones(n, dtype=bool) if weights is None else np.asarray(weights, dtype=np.float64) > 0
        for i in np.flatnonzero(kept):  # rows with a positive weight, one at a time (no n x d temporary)
            kept[i] = bool(np.isfinite(U[i]).all())
        return kept

    def _report(self, name: str, values: np.ndarray, fill: float = 0.0) -> None:
        """Publish ``values`` (one per client that reached ``_aggregate``) as the per-client
        attribute ``name``, ``fill`` for the dropped clients."""
        self._per_client[name] = (np.asarray(values, dtype=np.float64), fill)

    @property
    def _n_nonfinite(self) -> int:
        """Clients with a positive weight dropped for a non-finite update this round."""
        return max(int(getattr(self, "n_dropped_", 0)) - int(getattr(self, "_n_zero_weight", 0)), 0)

    def _effective_f(self, n_kept: int, f: int, holds: Callable[[int, int], bool], rule: str) -> int:
        """Check ``holds(n, f)`` on the clients given and on those kept; return ``f_eff``.

        Raises AssumptionError (one line naming the rule, ``n`` and ``f``) when it fails.
        """
        name = type(self).__name__
        k = self._n_nonfinite
        n = n_kept + k
        if not holds(n, f):
            raise AssumptionError(f"{name} needs {rule}; got n={n}, f={f}")
        f_eff = max(f - k, 0)
        if not holds(n_kept, f_eff):
            raise AssumptionError(f"{name} needs {rule}; dropping {k} non-finite update(s) leaves "
                                  f"n={n_kept}, f={f_eff}")
        return f_eff


@register("aggregator", "fedavg")
class FedAvg(AggregationRule):
    """Federated averaging, the weighted mean of client updates (McMahan et al. 2017,
    "Communication-Efficient Learning of Deep Networks from Decentralized Data").

    Threat model: none. A single client can move the aggregate arbitrarily far; it is the
    baseline every robust rule is compared with (``robust = False``). Non-finite updates are still
    dropped, as by every aggregator.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import FedAvg
    >>> FedAvg().aggregate(np.array([[0.0, 2.0], [2.0, 4.0]])).tolist()
    [1.0, 3.0]
    """

    robust: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {}

    def __init__(self) -> None:
        pass

    def _aggregate(self, U, w, **context):
        return weighted_mean(U, w), w.copy()


@register("aggregator", "median")
class CoordinateMedian(AggregationRule):
    """Coordinate-wise median of the client updates (Yin, Chen, Ramchandran & Bartlett 2018,
    "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates").

    Threat model: robust while fewer than half of the clients are Byzantine, coordinate by
    coordinate; it needs no ``f``. Client weights are ignored (the median is unweighted, as in the
    paper). ``weights_`` gives each client's share: the fraction of coordinates at which its value
    was the median (a half for each of the two middle values when n is even).

    Limits: with heterogeneous (non-IID) clients the median is biased towards the majority, and
    attacks that stay inside the honest spread (ALIE, Baruch et al. 2019) shift it.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import CoordinateMedian
    >>> CoordinateMedian().aggregate(np.array([[0.0], [1.0], [100.0]])).tolist()
    [1.0]
    """

    uses_weights: ClassVar[bool] = False
    robust: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {}

    def __init__(self) -> None:
        pass

    def _aggregate(self, U, w, **context):
        return coordinate_median(U, return_weights=True)
