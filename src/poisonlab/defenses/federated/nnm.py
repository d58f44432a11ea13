"""Nearest-neighbour mixing, a pre-aggregation for any rule (Allouah et al. 2023)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...base import BaseAggregator
from ...exceptions import InvalidParameterError
from ...registry import register
from .aggregate import nnm
from .basic import BYZANTINE_F, AggregationRule


@register("aggregator", "nnm")
class NNM(AggregationRule):
    """Nearest-neighbour mixing before another rule (Allouah, Farhadkhani, Guerraoui, Gupta,
    Pinot & Stephan 2023, "Fixing by Mixing: A Recipe for Optimal Byzantine ML under
    Heterogeneity", AISTATS).

    Each update is replaced by the mean of its ``n - f`` nearest neighbours (itself included),
    then ``aggregator`` aggregates the mixed updates. Mixing pulls every honest update towards
    the honest mean and shrinks what the ``f`` Byzantine ones can hide in, so that rules such as
    the coordinate-wise median, trimmed mean or Krum reach the optimal error under heterogeneous
    (non-IID) clients.

    Threat model: up to ``f`` Byzantine clients with ``n > 2f``; refuses
    (:class:`~poisonlab.exceptions.AssumptionError`) when ``n <= 2f`` (and the wrapped rule
    refuses on its own assumption). Non-finite updates are dropped first and charged to ``f``,
    for the wrapped rule too (see
    :class:`~poisonlab.defenses.federated.basic.AggregationRule`).

    Parameters
    ----------
    f : int >= 0
        Number of Byzantine clients to tolerate.
    aggregator : BaseAggregator or str, default="trimmed_mean"
        The rule applied to the mixed updates: an aggregator object (cloned at the first round,
        so yours is never modified) or a registry name, built with ``f`` when the rule takes one
        (``"trimmed_mean"`` becomes ``TrimmedMean(f=f)``), without parameters otherwise.

    Attributes
    ----------
    aggregator_ : BaseAggregator
        The wrapped rule as used (its own ``weights_`` are over the mixed updates).
    weights_ : ndarray of shape (n_clients,)
        Each client's share of the result: the wrapped rule's weights of the mixed updates times
        the mixing matrix (sums to 1).

    Notes
    -----
    ``uses_weights`` and ``robust`` are those of the wrapped rule (properties of the object, not
    of the class). Client weights go to the wrapped rule; the mixing itself is unweighted, as in
    the paper. Context (``server_update``, ``client_ids``) is passed to the wrapped rule when it
    takes it. :meth:`reset` resets the wrapped rule (state across rounds, e.g. centred clipping).

    Limits: mixing costs a second copy of the updates (``n x d``) and ``O(n^2 d)`` time; NNM adds
    no robustness to a rule that has none (mixing before a plain mean leaves each Byzantine
    update in its own mixed update).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import NNM
    >>> U = np.array([[0.0], [1.0], [3.0], [10.0]])   # mixed: 4/3, 4/3, 4/3, 14/3
    >>> agg = NNM(f=1, aggregator="median")
    >>> np.round(agg.aggregate(U), 6).tolist()
    [1.333333]
    """

    #: Whatever a wrapped rule may need or use; passed on when the wrapped rule takes it.
    accepts: ClassVar[tuple[str, ...]] = ("server_update", "client_ids")
    _parameter_constraints: ClassVar[dict] = {"f": BYZANTINE_F, "aggregator": [BaseAggregator, str]}

    def __init__(self, *, f: int, aggregator: Any = "trimmed_mean") -> None:
        self.f = f
        self.aggregator = aggregator

    # --- the wrapped rule --------------------------------------------------------------------

    def _inner_class(self) -> type | None:
        spec = self.aggregator
        if isinstance(spec, BaseAggregator):
            return type(spec)
        if isinstance(spec, str):
            from ... import registry

            try:
                return registry.get("aggregator", spec)
            except ValueError:
                return None
        return None

    @property
    def uses_weights(self) -> bool:  # type: ignore[override]
        inner = getattr(self, "aggregator_", None)
        if inner is not None and getattr(self, "_aggregator_spec", None) is self.aggregator:
            return bool(inner.uses_weights)
        cls = self._inner_class()
        return True if cls is None else bool(getattr(cls, "uses_weights", True))

    @property
    def robust(self) -> bool:  # type: ignore[override]
        cls = self._inner_class()
        return True if cls is None else bool(getattr(cls, "robust", True))

    def _build_inner(self) -> BaseAggregator:
        spec = self.aggregator
        if getattr(self, "aggregator_", None) is not None and getattr(self, "_aggregator_spec", None) is spec:
            return self.aggregator_
        if isinstance(spec, BaseAggregator):
            inner = spec.clone()
        else:
            cls = self._inner_class()
            if cls is None:
                from ... import registry

                raise InvalidParameterError(f"NNM.aggregator must be an aggregator or one of "
                                            f"{sorted(registry.available('aggregator'))}; got {spec!r}")
            if cls is NNM:
                raise InvalidParameterError("NNM.aggregator must be another rule; got 'nnm'")
            params = {"f": self.f} if "f" in cls._param_names() else {}
            try:
                inner = cls(**params)
            except TypeError as exc:
                raise InvalidParameterError(f"NNM.aggregator={spec!r} needs parameters ({exc}); give an "
                                            f"aggregator object instead of its name") from exc
        self.aggregator_ = inner
        self._aggregator_spec = spec
        return inner

    def reset(self) -> "NNM":
        """Reset the wrapped rule's state across rounds."""
        inner = getattr(self, "aggregator_", None)
        if inner is not None:
            inner.reset()
        return self

    # --- aggregation -------------------------------------------------------------------------

    def _aggregate(self, U, w, **context: Any):
        inner = self._build_inner()
        f_eff = self._effective_f(len(U), int(self.f), lambda n, f: n > 2 * f, "n > 2f")
        Y, M = nnm(U, f_eff, return_mixing=True)
        ctx = {k: v for k, v in context.items() if k in inner.needs + inner.accepts}
        inner_f = getattr(inner, "f", None)
        if inner_f is not None:  # the dropped clients count against the wrapped rule's f too
            inner.f = max(int(inner_f) - self._n_nonfinite, 0)
        try:
            out = inner.aggregate(Y, w, **ctx)
        finally:
            if inner_f is not None:
                inner.f = inner_f
        return out, inner.weights_ @ M
