"""Shared mechanics of availability (indiscriminate, clean-label) poisons of images: an L-inf
perturbation of a chosen fraction of the training set, labels untouched, that makes a model
trained on it generalise badly."""

from __future__ import annotations

import numbers
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from ..._validation import Interval, check_scalar
from ...base import N_POISON, POISON_RATE, BaseAttack, PoisonResult, resolve_n_poison
from ...exceptions import DataError, InvalidParameterError
from .._budget import perturbation_budget


def check_clip(clip: Any) -> tuple[float, float]:
    """``clip`` as ``(lo, hi)`` floats with ``lo < hi``; a one-line error otherwise."""
    try:
        lo, hi = (float(v) for v in clip)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"clip must be two numbers (lo, hi); got {clip!r}") from exc
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InvalidParameterError(f"clip must be two finite numbers with lo < hi; got {clip!r}")
    return lo, hi


class AvailabilityAttack(BaseAttack):
    """Base of the availability poisons: perturb ``poison_rate`` (or ``n_poison``) of the
    training samples, drawn uniformly, within an L-inf ball of radius ``eps`` and inside
    ``clip``; labels are never changed. Subclasses implement :meth:`_perturb`.
    """

    family = "availability"
    modalities: ClassVar[tuple[str, ...]] = ("image",)
    min_ndim = 3
    needs = ("model",)

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "eps": [Interval(numbers.Real, 0, None, closed="neither")],
        "poison_rate": POISON_RATE,
        "n_poison": N_POISON,
        "clip": ["array-like"],
        "random_state": ["random_state"],
    }

    eps: float
    poison_rate: float | None
    n_poison: int | None
    clip: Any

    @abstractmethod
    def _perturb(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, rng: np.random.Generator,
                 model: Any, clip: tuple[float, float]) -> tuple[np.ndarray, dict[str, Any]]:
        """The poisoned copies of the chosen samples ``X`` (labels ``y``) and facts for ``info``."""

    def _poison(self, X, y, *, n_classes, rng, model=None, **_):
        lo, hi = check_clip(self.clip)
        # an L-inf budget as wide as the value range is no budget at all
        check_scalar(self.eps, "eps", numbers.Real, low=0.0, high=hi - lo, low_inclusive=False,
                     high_inclusive=False)
        if not np.issubdtype(X.dtype, np.floating):
            raise DataError(f"X must hold floating-point images scaled to clip={self.clip!r}; got dtype {X.dtype}")
        if float(X.min()) < lo or float(X.max()) > hi:
            raise DataError(f"X must lie within clip=({lo:g}, {hi:g}) (images scaled to [0, 1] by default); "
                            f"got values in [{float(X.min()):.3g}, {float(X.max()):.3g}]")
        n = resolve_n_poison(self.poison_rate, self.n_poison, len(y), len(y), candidates_desc="samples")
        idx = np.sort(rng.choice(len(y), size=n, replace=False))
        Xp, facts = self._perturb(np.array(X[idx], copy=True), np.array(y[idx], copy=True), n_classes=n_classes,
                                  rng=rng, model=model, clip=(lo, hi))
        # PGD works in float32: bring the result back onto the budget in X's own dtype
        Xp = np.clip(Xp.astype(X.dtype, copy=False), X[idx] - self.eps, X[idx] + self.eps)
        Xp = np.clip(Xp, lo, hi).astype(X.dtype, copy=False)
        X_out = np.array(X, copy=True)
        X_out[idx] = Xp
        mask = np.zeros(len(y), dtype=bool)
        mask[idx] = True
        info = {"attack": type(self).__name__, "n_poison": n, "poison_rate": n / len(y), "labels_changed": 0,
                **facts, **perturbation_budget(X_out[idx], X[idx])}
        return PoisonResult(X_out, np.array(y, copy=True), mask, idx, None, info)
