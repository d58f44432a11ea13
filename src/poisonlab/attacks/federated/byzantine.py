"""Simple Byzantine clients: sign flipping and Gaussian noise.

Both see only their own updates (``knowledge = "own"``): they are the classic baselines every
robust aggregator is first tested against.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...base import BaseUpdateAttack
from ...registry import register


def sign_flip(own: np.ndarray, scale: float) -> np.ndarray:
    """``-scale * own``: each client's update reversed and scaled."""
    return -float(scale) * np.asarray(own, dtype=np.float64)


def gaussian_updates(own: np.ndarray, std: float, center: str, rng: np.random.Generator) -> np.ndarray:
    """One independent draw of ``N(m, std^2 I)`` per malicious client, where ``m`` is zero
    (``center="zero"``) or the coordinate-wise mean of the malicious clients' own updates
    (``center="own_mean"``)."""
    noise = rng.standard_normal(own.shape) * float(std)
    if center == "own_mean":
        noise += own.mean(axis=0)
    return noise


@register("attack", "sign_flip")
class SignFlip(BaseUpdateAttack):
    """Sign-flipping clients send -scale times their own update.

    The sign-flipping Byzantine worker of the robust-aggregation literature (e.g. Li et al. 2019,
    "RSA: Byzantine-Robust Stochastic Aggregation Methods for Distributed Learning from
    Heterogeneous Datasets"; Allen-Zhu et al. 2021, "Byzantine-Resilient Non-Convex Stochastic
    Gradient Descent"): each malicious client computes its update honestly on its own data, then
    sends it reversed, ``-scale * own``, pulling the average against the descent direction.

    Threat model: the attacker controls the updates of its own clients and sees only those
    (``knowledge = "own"``); it does not know the honest updates or the aggregation rule.

    Parameters
    ----------
    scale : float > 0, default=1.0
        How much to amplify the reversed update (1 = plain sign flip; larger values break the
        plain mean faster but stand out to norm-based defenses).
    random_state : int, Generator or None
        Unused (the attack is deterministic); accepted so that every attack takes one.

    Notes
    -----
    Limits: a reversed update points away from every honest one, so distance-based rules
    (Krum, coordinate-wise median, trimmed mean) discard it easily when the malicious clients are a
    minority; it is a baseline, not a stealthy attack.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.federated import SignFlip
    >>> SignFlip(scale=2.0).craft(np.array([[1.0, -0.5]])).tolist()
    [[-2.0, 1.0]]
    """

    knowledge = "own"

    _parameter_constraints = {
        "scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, scale: float = 1.0, random_state: Any = None) -> None:
        self.scale = scale
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        return sign_flip(own, self.scale)


@register("attack", "gaussian")
class GaussianNoise(BaseUpdateAttack):
    """Gaussian Byzantine clients send noise instead of an update.

    The Gaussian attack of Blanchard et al. 2017 ("Machine Learning with Adversaries: Byzantine
    Tolerant Gradient Descent", the "Gaussian Byzantine" workers) and of most Byzantine-robustness
    benchmarks: each malicious client sends an independent draw of ``N(m, std^2 I)``, with ``m``
    zero or, with ``center="own_mean"``, the coordinate-wise mean of the malicious clients' own
    (honestly computed) updates, which keeps the noise centred where a real update would be.

    Threat model: the attacker controls its own clients and sees only their updates
    (``knowledge = "own"``).

    Parameters
    ----------
    std : float > 0, default=1.0
        Standard deviation of the noise, per coordinate.
    center : {"zero", "own_mean"}, default="zero"
        Mean of the noise: zero, or the mean of the malicious clients' own updates.
    random_state : int, Generator or None
        Seeds the noise; the same seed gives the same updates.

    Notes
    -----
    Limits: large noise is trivially filtered by norm clipping and distance-based rules; small
    noise around ``own_mean`` is nearly an honest update. Its use is to check that an aggregator
    never lets a wild update through, not to break a robust one.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.federated import GaussianNoise
    >>> own = np.zeros((2, 3))
    >>> out = GaussianNoise(std=0.5, random_state=0).craft(own)
    >>> out.shape, bool(np.array_equal(out, GaussianNoise(std=0.5, random_state=0).craft(own)))
    ((2, 3), True)
    """

    knowledge = "own"

    _parameter_constraints = {
        "std": [Interval(numbers.Real, 0, None, closed="neither")],
        "center": [Options(("zero", "own_mean"))],
        "random_state": ["random_state"],
    }

    def __init__(self, *, std: float = 1.0, center: str = "zero", random_state: Any = None) -> None:
        self.std = std
        self.center = center
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        return gaussian_updates(own, self.std, self.center, rng)
