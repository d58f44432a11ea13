"""FLTrust (Cao, Fang, Liu & Gong 2021)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...exceptions import DataError
from ...registry import register
from .aggregate import fltrust
from .basic import AggregationRule


@register("aggregator", "fltrust")
class FLTrust(AggregationRule):
    """FLTrust, trust from the server's own root-data update (Cao, Fang, Liu & Gong 2021,
    "FLTrust: Byzantine-robust Federated Learning via Trust Bootstrapping", NDSS).

    Each client gets the trust score ``TS_i = ReLU(cos(g_i, g_0))`` against the server's update
    ``g_0`` (``server_update``); every ``g_i`` is rescaled to the norm of ``g_0``; the aggregate is
    the trust-weighted mean of the rescaled updates. A client pointing away from ``g_0`` gets no
    trust; a boosted update is scaled back to ``|g_0|``.

    Threat model: any number of Byzantine clients, even a majority, provided the server's root
    dataset (a few hundred clean samples) is representative of the task, so that honest updates
    point roughly where ``g_0`` does.

    Zero total trust (no client within 90 degrees of ``g_0``) leaves the paper's ratio undefined
    (0/0). Then ``aggregate`` returns a zero update (the global model does not move this round)
    and every client is excluded: ``weights_`` is all zeros -- the one case where it does not sum
    to 1. Returning ``g_0`` instead would train on the root dataset alone, which the paper does
    not do; refusing would stop a whole run for one bad round.

    FLTrust has no hyperparameter: its input besides the updates is the ``server_update`` keyword
    of :meth:`aggregate` (an array of shape ``(n_params,)``), which it needs every round.

    Attributes
    ----------
    trust_scores_ : ndarray of shape (n_clients,)
        ``ReLU(cos(g_i, g_0))`` (0 for dropped clients).
    weights_ : ndarray of shape (n_clients,)
        ``trust_scores_ / trust_scores_.sum()``: the weights of the rescaled updates.

    Notes
    -----
    Limits: needs a clean, representative root dataset on the server; with non-IID clients whose
    data the root set does not cover, honest updates get little trust. Attackers who stay within
    90 degrees of ``g_0`` (adaptive attacks, the paper's Section 6) keep some trust. Client weights
    (sample counts) are ignored, as in the paper.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import FLTrust
    >>> U = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    >>> agg = FLTrust()
    >>> agg.aggregate(U, server_update=np.array([1.0, 0.0])).tolist()
    [1.0, 0.0]
    >>> agg.trust_scores_.tolist()
    [1.0, 0.0, 0.0]
    """

    uses_weights: ClassVar[bool] = False
    needs: ClassVar[tuple[str, ...]] = ("server_update",)
    _parameter_constraints: ClassVar[dict] = {}

    def __init__(self) -> None:
        pass

    def _aggregate(self, U, w, *, server_update: Any = None, **context: Any):
        try:
            g0 = np.asarray(server_update, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            what = type(server_update).__name__
            raise DataError(f"FLTrust's server_update must be a numeric vector; got {what}") from exc
        if g0.shape != (U.shape[1],):
            raise DataError(f"FLTrust's server_update has shape {g0.shape} but the updates have "
                            f"{U.shape[1]} parameters")
        if not np.isfinite(g0).all():
            raise DataError("FLTrust's server_update holds NaN or infinite values")
        out, share, ts = fltrust(U, g0, return_weights=True)
        self._report("trust_scores_", ts, 0.0)
        return out, share
