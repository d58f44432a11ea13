"""Blended: a key pattern mixed into the whole image with a small weight."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval
from ...base import BackdoorAttack
from ...exceptions import InvalidParameterError, NotFittedError
from ...registry import register
from ..triggers import blend


@register("attack", "blended")
class Blended(BackdoorAttack):
    """Blended-injection backdoor (Chen, Liu, Li, Lu & Song 2017, "Targeted Backdoor Attacks on
    Deep Learning Systems Using Data Poisoning", section 4.2).

    Poisoned inputs are ``x' = (1 - alpha) * x + alpha * k`` for a key pattern ``k`` (a chosen
    image, or uniform random noise as in the paper's "random pattern"), relabelled to the target.
    A small ``alpha`` keeps the trigger hard to see; at test time a larger ``test_alpha`` may be
    used (the paper uses 0.2 to train and up to 0.2 to test).

    Threat model: as BadNets -- pixels and labels of ``n_poison`` training samples.

    Parameters
    ----------
    target, target_mode, poison_rate, n_poison, random_state
        As in :class:`~poisonlab.attacks.data.BadNets`.
    key : ndarray, optional
        The key, shaped like one input (or broadcastable to it). Default: uniform noise between
        the data's minimum and maximum, drawn from ``random_state`` at ``poison`` time.
    alpha : float in (0, 1), default=0.2
        Blend weight of the key in poisoned training samples.
    test_alpha : float in (0, 1), optional
        Blend weight used by ``apply_trigger``; default ``alpha``.

    Limits
    ------
    With a random key and ``random_state=None``, ``apply_trigger`` needs ``poison`` to have run
    first (the key is drawn there and kept as ``key_``).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import Blended
    >>> X = np.zeros((50, 6, 6)); y = np.arange(50) % 5
    >>> atk = Blended(target=1, n_poison=4, alpha=0.2, random_state=0)
    >>> res = atk.poison(X, y)
    >>> bool(np.allclose(atk.apply_trigger(X[:1])[0], 0.2 * atk.key_))
    True
    """

    modalities = ("image", "tabular", "audio")

    _parameter_constraints = {
        **BackdoorAttack._parameter_constraints,
        "key": ["array-like", Interval(numbers.Real, None, None, closed="neither"), None],
        "alpha": [Interval(numbers.Real, 0, 1, closed="neither")],
        "test_alpha": [Interval(numbers.Real, 0, 1, closed="neither"), None],
    }

    def __init__(self, *, target: int = 0, target_mode: str = "all-to-one",
                 poison_rate: float | None = 0.1, n_poison: int | None = None, key: Any = None,
                 alpha: float = 0.2, test_alpha: float | None = None, random_state: Any = None) -> None:
        self.target = target
        self.target_mode = target_mode
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.key = key
        self.alpha = alpha
        self.test_alpha = test_alpha
        self.random_state = random_state

    def _fit_trigger(self, X, rng):
        if self.key is not None:
            key = np.asarray(self.key, dtype=np.float64)
            if not np.isfinite(key).all():
                raise InvalidParameterError("key must be finite")
            try:
                np.broadcast_shapes(key.shape, X.shape[1:])
            except ValueError as exc:
                raise InvalidParameterError(
                    f"key of shape {key.shape} does not fit inputs of shape {X.shape[1:]}") from exc
            self.key_ = key
        else:
            lo, hi = float(X.min()), float(X.max())
            if hi <= lo:
                hi = lo + 1.0
            self.key_ = rng.uniform(lo, hi, size=X.shape[1:])

    def _check_trigger_ready(self):
        if self.key is None and getattr(self, "key_", None) is None:
            raise NotFittedError("Blended draws its random key in poison(); call poison(...) first "
                                 "or pass key=")

    def _apply_trigger(self, X: np.ndarray, *, test: bool = False) -> np.ndarray:
        key = getattr(self, "key_", None)
        if key is None:
            key = np.asarray(self.key, dtype=np.float64)
        alpha = self.test_alpha if (test and self.test_alpha is not None) else self.alpha
        return blend(X, key, alpha)
