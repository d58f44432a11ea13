"""Min-max and min-sum (Shejwalkar & Houmansadr, NDSS 2021): the AGR-agnostic optimised attacks.

The maths are small pure functions named after the paper: :func:`perturbation` (the three
perturbation vectors of Section IV), :func:`search_gamma` (Algorithm 1, the binary search for the
scaling factor), and the two constraints, :func:`min_max_feasibility` (Eq. 4) and
:func:`min_sum_feasibility` (Eq. 5). The classes only do protocol.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable

import numpy as np

from ..._validation import Interval, Options
from ...base import BaseUpdateAttack
from ...exceptions import AssumptionError, InvalidParameterError, PoisonlabWarning
from ...registry import register

#: The perturbation vectors of the paper, all pointing against the benign mean.
PERTURBATIONS = ("unit_vec", "std", "sign")


def perturbation(benign: np.ndarray, kind: str) -> np.ndarray:
    """The perturbation ``p`` added to the benign mean ``mu``, ``malicious = mu + gamma * p``.

    * ``"unit_vec"`` -- inverse unit vector, ``-mu / ||mu||``;
    * ``"std"`` -- inverse standard deviation, ``-std(benign)`` per coordinate (``ddof=1``);
    * ``"sign"`` -- inverse sign, ``-sign(mu)``.

    Refuses (``AssumptionError``) a zero perturbation (a zero mean, or identical benign updates
    for ``"std"``): there is then no direction to push in.
    """
    mu = benign.mean(axis=0)
    if kind == "unit_vec":
        norm = float(np.linalg.norm(mu))
        p = -mu / norm if norm > 0 else np.zeros_like(mu)
    elif kind == "std":
        p = -benign.std(axis=0, ddof=1)
    elif kind == "sign":
        p = -np.sign(mu)
    else:
        raise InvalidParameterError(f"perturbation must be one of {PERTURBATIONS}; got {kind!r}")
    if not np.any(p):
        what = "the benign updates are identical" if kind == "std" else "the benign mean is zero"
        raise AssumptionError(f"the {kind!r} perturbation is zero ({what}): there is no direction to "
                              f"push the malicious update in")
    return p


def search_gamma(feasible: Callable[[float], bool], gamma_init: float, tau: float) -> tuple[float, bool]:
    """Algorithm 1 of the paper: the largest ``gamma`` with ``feasible(gamma)``, by halving steps.

    Starts at ``gamma_init`` with a step of ``gamma_init``; a feasible ``gamma`` is kept and
    increased by half the step, an infeasible one decreased by half the step; the step halves
    every time, until the kept value and the next candidate are within ``tau`` (as in the
    authors' release: ``gamma_init = 10``, ``tau = 1e-5``). Each candidate is the midpoint of the
    last feasible and the last infeasible value, so when the feasible set is an interval
    ``[0, b]`` with ``b < 2 * gamma_init`` the result is in ``[b - 2 tau, b]``.

    Returns
    -------
    gamma : float
        The last feasible value (0.0 if none was).
    bounded : bool
        Whether some candidate was infeasible; False means the search ran into its ceiling
        ``2 * gamma_init`` and ``gamma`` may be far from the largest feasible one.
    """
    gamma, step, succ, bounded = float(gamma_init), float(gamma_init), 0.0, False
    while abs(succ - gamma) > tau:
        if feasible(gamma):
            succ = gamma
            gamma += step / 2
        else:
            bounded = True
            gamma -= step / 2
        step /= 2
    return succ, bounded


def _deviations(benign: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per benign update ``x_i``: ``a_i = ||mu - x_i||^2`` and ``b_i = p . (mu - x_i)``, and
    ``c = ||p||^2``, so that ``||mu + gamma p - x_i||^2 = a_i + 2 gamma b_i + gamma^2 c``: every
    candidate ``gamma`` then costs O(n), not O(n * n_params)."""
    diff = benign.mean(axis=0) - benign
    return np.einsum("ij,ij->i", diff, diff), diff @ p, float(p @ p)


def min_max_feasibility(benign: np.ndarray, p: np.ndarray) -> Callable[[float], bool]:
    """Eq. (4), min-max: ``max_i ||mu + gamma p - x_i|| <= max_{i,j} ||x_i - x_j||``, the
    malicious update no farther from any benign update than the two farthest benign ones are
    from each other (squared distances; ``mu`` the benign mean)."""
    from scipy.spatial.distance import pdist

    a, b, c = _deviations(benign, p)
    bound = float(pdist(benign, "sqeuclidean").max()) if len(benign) > 1 else 0.0

    def feasible(gamma: float) -> bool:
        return float(np.max(a + gamma * (2.0 * b + gamma * c))) <= bound

    return feasible


def min_sum_feasibility(benign: np.ndarray, p: np.ndarray) -> Callable[[float], bool]:
    """Eq. (5), min-sum: ``sum_i ||mu + gamma p - x_i||^2 <= max_k sum_i ||x_k - x_i||^2``, the
    malicious update's sum of squared distances to the benign updates no larger than that of
    any benign update. Uses ``sum_i ||x_k - x_i||^2 = n a_k + sum_i a_i`` (``a_k = ||x_k -
    mu||^2``), which needs no pairwise distances."""
    a, b, c = _deviations(benign, p)
    n, total, cross = len(benign), float(a.sum()), float(b.sum())
    bound = n * float(a.max()) + total

    def feasible(gamma: float) -> bool:
        return total + 2.0 * gamma * cross + n * gamma * gamma * c <= bound

    return feasible


class _Optimised(BaseUpdateAttack):
    """Shared protocol of min-max and min-sum: benign = honest + own, ``mu + gamma * p``."""

    knowledge = "honest"

    _parameter_constraints = {
        "perturbation": [Options(PERTURBATIONS)],
        "gamma_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "tau": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    _feasibility: Callable[[np.ndarray, np.ndarray], Callable[[float], bool]]

    def __init__(self, *, perturbation: str = "std", gamma_init: float = 10.0, tau: float = 1e-5,
                 random_state: Any = None) -> None:
        self.perturbation = perturbation
        self.gamma_init = gamma_init
        self.tau = tau
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        name = type(self).__name__
        if not self.tau < self.gamma_init:
            raise InvalidParameterError(f"{name}.tau must be smaller than gamma_init={self.gamma_init!r}; "
                                        f"got {self.tau!r}")
        benign = np.concatenate([honest, own], axis=0)
        p = perturbation(benign, self.perturbation)
        gamma, bounded = search_gamma(type(self)._feasibility(benign, p), self.gamma_init, self.tau)
        if not bounded:
            warnings.warn(f"{name}: gamma reached the search's ceiling 2 * gamma_init = {2 * self.gamma_init:g} "
                          f"and the constraint still holds there; the attack is weaker than it could "
                          f"be: raise gamma_init", PoisonlabWarning, stacklevel=3)
        self.gamma_ = gamma
        update = benign.mean(axis=0) + gamma * p
        return np.tile(update, (own.shape[0], 1))


@register("attack", "min_max")
class MinMax(_Optimised):
    """Min-max, the mean pushed as far as the benign spread allows.

    Shejwalkar & Houmansadr 2021, "Manipulating the Byzantine: Optimizing Model Poisoning Attacks
    and Defenses for Federated Learning" (NDSS), the AGR-agnostic min-max attack. Every malicious
    client sends ``mu + gamma * p``: ``mu`` the benign updates' mean, ``p`` a perturbation
    against it, and ``gamma`` the largest value (found by the paper's binary search, Algorithm 1)
    such that the malicious update is no farther from any benign update than the two farthest
    benign updates are from each other:
    ``max_i ||mu + gamma p - x_i|| <= max_{i,j} ||x_i - x_j||`` (Eq. 4). The malicious update
    then hides inside the benign cloud for any distance-based rule.

    Threat model: colluding omniscient clients that see the round's honest updates
    (``knowledge = "honest"``); the benign set is the honest updates plus the malicious clients'
    own honestly computed ones (the paper's full-knowledge setting). The aggregation rule is not
    needed (AGR-agnostic).

    Parameters
    ----------
    perturbation : {"std", "unit_vec", "sign"}, default="std"
        ``p``: inverse standard deviation ``-std`` (the paper's best overall, the default),
        inverse unit vector ``-mu / ||mu||``, or inverse sign ``-sign(mu)``.
    gamma_init : float > 0, default=10.0
        Start of the search (the authors' release uses 10); the search covers ``(0, 2 *
        gamma_init)`` and warns when the constraint still holds at the ceiling.
    tau : float > 0, default=1e-5
        Stopping threshold of the search; smaller than ``gamma_init``.
    random_state : int, Generator or None
        Unused (the attack is deterministic); accepted so that every attack takes one.

    Attributes
    ----------
    gamma_ : float
        The scaling factor found by the last :meth:`craft`.

    Notes
    -----
    The search is the authors' release: a step of ``gamma_init`` halved every iteration; the
    result is within ``2 * tau`` of the largest feasible ``gamma``. Distances are evaluated as
    ``a_i + 2 gamma b_i + gamma^2 c`` from quantities computed once, so the search costs O(n) per
    step after one O(n^2 * n_params) pass for the pairwise bound. Refuses a zero perturbation
    (``AssumptionError``). Limits: the paper's AGR-tailored variants (which optimise against a
    known aggregator) are not implemented; without honest updates (the paper's partial-knowledge
    setting) pass the malicious clients' own updates as ``honest_updates``.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.federated import MinMax
    >>> rng = np.random.default_rng(0)
    >>> honest, own = rng.normal(size=(8, 5)), rng.normal(size=(2, 5))
    >>> atk = MinMax()
    >>> out = atk.craft(own, honest_updates=honest)
    >>> out.shape, bool(np.array_equal(out[0], out[1])), atk.gamma_ > 0
    ((2, 5), True, True)
    """

    _feasibility = staticmethod(min_max_feasibility)


@register("attack", "min_sum")
class MinSum(_Optimised):
    """Min-sum, the mean pushed while summed distances stay benign.

    Shejwalkar & Houmansadr 2021, "Manipulating the Byzantine: Optimizing Model Poisoning Attacks
    and Defenses for Federated Learning" (NDSS), the AGR-agnostic min-sum attack. Every malicious
    client sends ``mu + gamma * p`` with the largest ``gamma`` (the paper's binary search,
    Algorithm 1) such that the sum of squared distances from the malicious update to the benign
    updates is no larger than that of any benign update:
    ``sum_i ||mu + gamma p - x_i||^2 <= max_k sum_i ||x_k - x_i||^2`` (Eq. 5). Stealthier than
    min-max against rules that score by summed distances (Krum, Multi-Krum).

    Threat model: as :class:`MinMax` (``knowledge = "honest"``; benign = honest + own).

    Parameters
    ----------
    perturbation : {"std", "unit_vec", "sign"}, default="std"
        ``p``: inverse standard deviation (the default), inverse unit vector or inverse sign.
    gamma_init : float > 0, default=10.0
        Start of the search; it covers ``(0, 2 * gamma_init)``.
    tau : float > 0, default=1e-5
        Stopping threshold of the search; smaller than ``gamma_init``.
    random_state : int, Generator or None
        Unused (the attack is deterministic); accepted so that every attack takes one.

    Attributes
    ----------
    gamma_ : float
        The scaling factor found by the last :meth:`craft`.

    Notes
    -----
    The bound is the paper's Eq. (5), the *largest* benign sum; the authors' released code
    compares with the smallest one (a stricter, stealthier variant). Because ``mu`` minimises the
    sum of squared distances, the constraint reads ``n gamma^2 ||p||^2 <= n max_k ||x_k - mu||^2``,
    i.e. ``gamma = max_k ||x_k - mu|| / ||p||``; the binary search finds it within ``2 * tau``.
    Limits: as :class:`MinMax`.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.federated import MinSum
    >>> rng = np.random.default_rng(0)
    >>> honest, own = rng.normal(size=(8, 5)), rng.normal(size=(2, 5))
    >>> atk = MinSum()
    >>> out = atk.craft(own, honest_updates=honest)
    >>> benign = np.r_[honest, own]
    >>> p = benign.std(axis=0, ddof=1)  # the "std" perturbation is -p
    >>> gamma = np.linalg.norm(benign - benign.mean(axis=0), axis=1).max() / np.linalg.norm(p)
    >>> bool(abs(atk.gamma_ - gamma) <= 2e-5)
    True
    """

    _feasibility = staticmethod(min_sum_feasibility)
