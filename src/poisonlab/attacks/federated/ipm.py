"""IPM, inner-product manipulation (Xie, Koyejo & Gupta, UAI 2019 / PMLR 2020)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval
from ...base import BaseUpdateAttack
from ...registry import register


def ipm_update(honest: np.ndarray, epsilon: float) -> np.ndarray:
    """``-epsilon * mean(honest)``: the honest mean reversed and shrunk."""
    return -float(epsilon) * honest.mean(axis=0)


@register("attack", "ipm")
class IPM(BaseUpdateAttack):
    """Inner-product manipulation, -epsilon times the honest mean.

    Xie, Koyejo & Gupta 2020, "Fall of Empires: Breaking Byzantine-tolerant SGD by Inner Product
    Manipulation" (UAI 2019, PMLR 115). Every malicious client sends ``-epsilon * mean(honest)``.
    Robust rules only bound the *distance* between their output and the honest mean; IPM makes
    the *inner product* of the aggregate with the true gradient negative instead. A small
    ``epsilon`` (0.1, the paper's choice against Krum and R20's setting) keeps the malicious
    updates close to each other and to the origin, so Krum and the median pick them; a large one
    (e.g. 100) reverses a plain or trimmed mean.

    Threat model: omniscient colluding clients that see the round's honest updates
    (``knowledge = "honest"``); the mean is over ``honest_updates`` only, as in the paper.

    Parameters
    ----------
    epsilon : float > 0, default=0.1
        How far the honest mean is reversed.
    random_state : int, Generator or None
        Unused (the attack is deterministic); accepted so that every attack takes one.

    Notes
    -----
    Limits: whether it breaks an aggregator depends on ``epsilon`` *and* the rule: small values
    target Krum / median, large values target mean-like rules; no single value does both.
    Defenses with a trusted reference (FLTrust) reject the reversed direction.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.federated import IPM
    >>> honest = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> IPM(epsilon=0.5).craft(np.zeros((2, 2)), honest_updates=honest).tolist()
    [[-1.0, -1.5], [-1.0, -1.5]]
    """

    knowledge = "honest"

    _parameter_constraints = {
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, epsilon: float = 0.1, random_state: Any = None) -> None:
        self.epsilon = epsilon
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        return np.tile(ipm_update(honest, self.epsilon), (own.shape[0], 1))
