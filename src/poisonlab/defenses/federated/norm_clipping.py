"""Norm thresholding with weak differential privacy (Sun, Kairouz, Suresh & McMahan 2019)."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

from ..._validation import Interval, check_random_state
from ...registry import register
from .aggregate import norm_clip
from .basic import AggregationRule


@register("aggregator", "norm_clipping")
class NormClipping(AggregationRule):
    """Norm clipping of each update, then the mean plus noise (Sun, Kairouz, Suresh & McMahan
    2019, "Can You Really Backdoor Federated Learning?").

    Each update is scaled down to norm at most ``max_norm`` (``u / max(1, |u| / M)``); the
    clipped updates are averaged with the client weights, and ``N(0, noise_std^2 I)`` is added
    to the result ("weak differential privacy": noise far below what a DP guarantee needs, which
    the paper finds enough to blunt backdoors).

    Threat model: attackers who boost their update to replace the global model (model
    replacement, Bagdasaryan et al. 2020). Clipping caps each client's influence at
    ``w_i * max_norm``; it removes no client, so ``f`` attackers move the result by up to
    ``max_norm`` times their total weight, in any direction they choose. That is a bounded,
    not a removed, influence: the class declares ``robust = False``.

    Parameters
    ----------
    max_norm : float > 0
        The norm bound ``M``; set it around the norm of honest updates (the paper studies the
        trade-off: too small slows training, too large lets boosted updates through).
    noise_std : float >= 0, default=0.0
        Standard deviation ``sigma`` of the Gaussian noise added to the aggregate (0: clipping
        only).
    random_state : None, int or Generator, default=None
        Seed of the noise. Resolved once, at the first round: successive rounds draw successive
        noise from the same generator, and :meth:`reset` restarts the sequence.

    Attributes
    ----------
    weights_ : ndarray of shape (n_clients,)
        Each client's share of the clipped sum before noise: ``w_i min(1, M / |u_i|)``
        normalised to 1 (a boosted update gets a small share).

    Notes
    -----
    Limits: an attacker who keeps within the norm bound (a constrain-and-scale attack, or many
    small malicious updates) passes unchanged; the noise slows clean training.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.federated import NormClipping
    >>> U = np.array([[3.0, 4.0], [0.0, 1.0]])
    >>> agg = NormClipping(max_norm=1.0)
    >>> np.round(agg.aggregate(U), 6).tolist()   # ((0.6, 0.8) + (0, 1)) / 2
    [0.3, 0.9]
    >>> np.round(agg.weights_, 6).tolist()       # shares 0.5 * 1/5 and 0.5 * 1, normalised
    [0.166667, 0.833333]
    """

    uses_weights: ClassVar[bool] = True
    robust: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        "max_norm": [Interval(numbers.Real, 0, None, closed="neither")],
        "noise_std": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, max_norm: float, noise_std: float = 0.0, random_state: Any = None) -> None:
        self.max_norm = max_norm
        self.noise_std = noise_std
        self.random_state = random_state

    def reset(self) -> "NormClipping":
        """Restart the noise sequence from ``random_state``."""
        self.__dict__.pop("rng_", None)
        return self

    def _aggregate(self, U, w, **context: Any):
        rng = None
        if self.noise_std > 0:
            if getattr(self, "rng_", None) is None:
                self.rng_ = check_random_state(self.random_state)
            rng = self.rng_
        return norm_clip(U, w, float(self.max_norm), noise_std=float(self.noise_std), rng=rng,
                         return_weights=True)
