"""ALIE, "A Little Is Enough" (Baruch, Baruch & Goldberg, NeurIPS 2019)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...base import BaseUpdateAttack
from ...exceptions import AssumptionError
from ...registry import register


def alie_supporters(n_clients: int, n_malicious: int) -> int:
    """``s = floor(n / 2 + 1) - f``: how many honest clients the malicious ones must win over to
    form a majority (Algorithm 3, line 1)."""
    return math.floor(n_clients / 2 + 1) - n_malicious


def alie_z_max(n_clients: int, n_malicious: int) -> float:
    """``z_max = Phi^{-1}((n - s) / n)`` with ``s`` from :func:`alie_supporters` (Algorithm 3,
    line 2): the largest shift, in standard deviations, that still leaves ``s`` honest
    coordinates farther from the mean than the malicious one under a normal model.

    Refuses (``AssumptionError``) when the malicious clients already form a majority
    (``f >= floor(n/2 + 1)``, so ``s <= 0``), where the paper's ``z_max`` is infinite.
    """
    from scipy.stats import norm

    s = alie_supporters(n_clients, n_malicious)
    if s <= 0:
        raise AssumptionError(
            f"ALIE's z_max needs the malicious clients not to be a majority: with n_clients={n_clients} "
            f"and {n_malicious} malicious, s = floor(n/2 + 1) - f = {s} <= 0 and z_max is infinite; "
            f"set z explicitly")
    return float(norm.ppf((n_clients - s) / n_clients))


def alie_update(benign: np.ndarray, z: float, sign: float = -1.0) -> np.ndarray:
    """``mu + sign * z * sigma`` per coordinate, with ``mu`` and ``sigma`` (``ddof=1``) over the
    rows of ``benign``."""
    mu = benign.mean(axis=0)
    sigma = benign.std(axis=0, ddof=1)
    return mu + float(sign) * float(z) * sigma


@register("attack", "alie")
class ALIE(BaseUpdateAttack):
    """A Little Is Enough, the mean moved by z std per coordinate.

    Baruch, Baruch & Goldberg 2019, "A Little Is Enough: Circumventing Defenses For Distributed
    Learning" (NeurIPS), Algorithm 3. Every malicious client sends the same update, the benign
    updates' coordinate-wise mean ``mu`` moved by ``z`` of their standard deviations ``sigma``:
    small enough per coordinate to pass median, trimmed-mean, Krum and Bulyan, consistent enough
    across coordinates and rounds to stall or steer training. With ``z=None``, ``z`` is the
    paper's ``z_max``: with ``n`` clients of which ``f`` are malicious, ``s = floor(n/2 + 1) - f``
    honest "supporters" are needed for a majority and ``z_max = Phi^{-1}((n - s) / n)``
    (``scipy.stats.norm.ppf``); e.g. ``n = 20, f = 4``: ``s = 7``, ``z_max = Phi^{-1}(0.65) =
    0.385``.

    Sign convention: the default ``direction="minus"`` sends ``mu - z * sigma`` (as in the
    reimplementations of Karimireddy et al. and Blades); the paper's Algorithm 3 writes
    ``mu_j + z_max * sigma_j`` (as do Shejwalkar & Houmansadr's and ByzFL's reimplementations),
    available as ``direction="plus"``. The paper's argument is symmetric in the sign: both stay
    within ``z`` standard deviations of the mean; which sign harms a given model more is an
    empirical question, so both are offered.

    Threat model: the malicious clients collude and, in this implementation, see the round's
    honest updates (``knowledge = "honest"``): ``mu`` and ``sigma`` are taken over the benign
    updates, the honest ones plus the malicious clients' own honestly computed ones, as in
    Shejwalkar & Houmansadr's evaluation. The paper's own variant is *not* omniscient: the
    corrupted workers estimate ``mu`` and ``sigma`` from their own updates only (their data is
    i.i.d. with the honest clients'); passing the own updates as ``honest_updates`` as well, with
    the round's ``n_clients``, is a close approximation of it (same mean, a slightly smaller
    ``sigma``).

    Parameters
    ----------
    z : float >= 0, optional
        Shift in standard deviations; default the paper's ``z_max`` from ``n_clients`` and the
        number of malicious clients (refused when the malicious clients are a majority).
    direction : {"minus", "plus"}, default="minus"
        ``mu - z * sigma`` or ``mu + z * sigma`` (the sign printed in the paper's Algorithm 3).
    random_state : int, Generator or None
        Unused (the attack is deterministic); accepted so that every attack takes one.

    Attributes
    ----------
    z_ : float
        The shift used by the last :meth:`craft`.

    Notes
    -----
    ``sigma`` is the sample standard deviation (``ddof=1``, as ``torch.std`` in the reference
    implementations). Some reimplementations compute ``z_max`` from the honest clients only,
    ``Phi^{-1}((n - f - s) / (n - f))``; pass ``z`` to use that. Limits: the attack assumes the
    coordinates are roughly normal across clients; with very few benign updates ``sigma`` is a
    poor estimate, and with many clients ``z_max`` shrinks towards 0 (the update tends to the
    mean and does little harm).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.federated import ALIE
    >>> from poisonlab.attacks.federated.alie import alie_z_max
    >>> honest = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0]])
    >>> own = np.array([[-2.0, 4.0]])
    >>> ALIE(z=1.5).craft(own, honest_updates=honest).tolist()  # mu = (1, 1), sigma = (2, 2)
    [[-2.0, -2.0]]
    >>> round(alie_z_max(20, 4), 4)  # n = 20 clients, f = 4 malicious: Phi^-1(0.65)
    0.3853
    """

    knowledge = "honest"

    _parameter_constraints = {
        "z": [Interval(numbers.Real, 0, None, closed="left"), None],
        "direction": [Options(("minus", "plus"))],
        "random_state": ["random_state"],
    }

    def __init__(self, *, z: float | None = None, direction: str = "minus", random_state: Any = None) -> None:
        self.z = z
        self.direction = direction
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        z = alie_z_max(n_clients, own.shape[0]) if self.z is None else float(self.z)
        self.z_ = z
        benign = np.concatenate([honest, own], axis=0)
        update = alie_update(benign, z, -1.0 if self.direction == "minus" else 1.0)
        return np.tile(update, (own.shape[0], 1))
