"""Model replacement and constrain-and-scale (Bagdasaryan et al., AISTATS 2020).

The attacker trains a backdoored model on its own data (the simulator does that; here its update
arrives as ``own_updates``) and scales the update so that it survives averaging.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval
from ...base import BaseUpdateAttack
from ...registry import register


def replacement_gamma(n_clients: int, server_lr: float) -> float:
    """``gamma = n / eta``: the boost that makes FedAvg's ``G + eta/n * sum(updates)`` land on
    the attacker's model when the other updates roughly cancel (Bagdasaryan et al., Eq. 3)."""
    return n_clients / float(server_lr)


def project_l2(updates: np.ndarray, max_norm: float) -> np.ndarray:
    """Each row scaled down to L2 norm ``max_norm`` if it is longer (shorter rows unchanged)."""
    norms = np.linalg.norm(updates, axis=1, keepdims=True)
    factor = np.minimum(1.0, float(max_norm) / np.where(norms > 0, norms, 1.0))
    return updates * factor


@register("attack", "model_replacement")
class ModelReplacement(BaseUpdateAttack):
    """Model replacement scales a backdoored update by n / eta.

    Bagdasaryan, Veit, Hua, Estrin & Shmatikov 2020, "How To Backdoor Federated Learning"
    (AISTATS). The server computes ``G' = G + eta / n * sum_i (L_i - G)``; an attacker who wants
    ``G' = X`` (its backdoored model) submits ``L = gamma * (X - G) + G`` with ``gamma = n / eta``:
    once the honest updates roughly cancel near convergence, the global model is *replaced* by the
    attacker's. In update terms every malicious client sends ``gamma * own``, ``own`` being the
    update it trained on backdoored data (the simulator's job: this class only scales it).

    Threat model: the attacker controls its clients' training and updates, sees only its own
    updates (``knowledge = "own"``), and knows (or guesses) the round's number of clients ``n``
    and the server learning rate ``eta``.

    Parameters
    ----------
    gamma : float > 0, optional
        The boost; default ``n_clients / server_lr`` (the paper's ``n / eta``), with
        ``n_clients`` the clients of the round as given to :meth:`craft`.
    server_lr : float > 0, default=1.0
        The server's learning rate ``eta`` (1 for plain FedAvg), used when ``gamma`` is None.
    random_state : int, Generator or None
        Unused (the attack is deterministic); accepted so that every attack takes one.

    Attributes
    ----------
    gamma_ : float
        The boost used by the last :meth:`craft`.

    Notes
    -----
    The default boost is for *one* attacker per round (the paper's setting); when several
    malicious clients each send a boosted backdoor update the replacement overshoots about that
    many times: give ``gamma = n / (eta * n_malicious)`` to split it among them. Limits: a boosted
    update has a large norm, so norm clipping or anomaly detection stops it; see
    :class:`ConstrainAndScale`.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.federated import ModelReplacement
    >>> ModelReplacement().craft(np.array([[0.1, -0.2]]), n_clients=10).tolist()
    [[1.0, -2.0]]
    """

    knowledge = "own"

    _parameter_constraints = {
        "gamma": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "server_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, gamma: float | None = None, server_lr: float = 1.0, random_state: Any = None) -> None:
        self.gamma = gamma
        self.server_lr = server_lr
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        self.gamma_ = replacement_gamma(n_clients, self.server_lr) if self.gamma is None else float(self.gamma)
        return self.gamma_ * own


@register("attack", "constrain_and_scale")
class ConstrainAndScale(BaseUpdateAttack):
    """Model replacement boosted up to the server's norm bound.

    Bagdasaryan et al. 2020, "How To Backdoor Federated Learning" (AISTATS), Section 4,
    constrain-and-scale. The backdoored update is boosted by ``gamma`` as in
    :class:`ModelReplacement`, then, where that makes it longer than the server's norm bound
    ``S = max_norm``, scaled back onto the bound (the paper's ``gamma = S / ||X - G||``): the
    largest boost a norm-clipping or norm-bounding defense lets through unchanged.

    What is implemented is the norm constraint. The paper's constrain-and-scale also trains the
    backdoored model with an anomaly-evasion term in the loss, ``alpha * L_class + (1 - alpha) *
    L_ano``, so that the update looks benign to the server's anomaly detector; that happens during
    training and cannot be done from a finished update, so it belongs to the simulator's local
    training, not here.

    Threat model: as :class:`ModelReplacement` (``knowledge = "own"``), plus knowledge of the
    server's L2 norm bound.

    Parameters
    ----------
    max_norm : float > 0, default=1.0
        The L2 norm bound ``S`` the server enforces (set it to the defense's bound); every sent
        update has norm at most this.
    gamma : float > 0, optional
        The boost before the projection; default ``n_clients / server_lr``.
    server_lr : float > 0, default=1.0
        The server's learning rate ``eta``, used when ``gamma`` is None.
    random_state : int, Generator or None
        Unused (the attack is deterministic); accepted so that every attack takes one.

    Attributes
    ----------
    gamma_ : float
        The boost used by the last :meth:`craft` (before the projection).

    Notes
    -----
    Each malicious client's update is projected onto the L2 ball of radius ``max_norm`` on its
    own. Limits: within the bound, the backdoor's influence on the average is at most
    ``max_norm / n`` per round, so against a tight bound the backdoor needs several rounds or
    several attackers; defenses that also add noise (clipping plus noise) or look at directions
    (FLTrust, FoolsGold) are not evaded by the norm constraint.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.federated import ConstrainAndScale
    >>> out = ConstrainAndScale(max_norm=5.0).craft(np.array([[0.6, 0.8]]), n_clients=10)
    >>> out.tolist(), float(np.linalg.norm(out))  # boosted to norm 10, projected onto 5
    ([[3.0, 4.0]], 5.0)
    """

    knowledge = "own"

    _parameter_constraints = {
        "max_norm": [Interval(numbers.Real, 0, None, closed="neither")],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "server_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, max_norm: float = 1.0, gamma: float | None = None, server_lr: float = 1.0,
                 random_state: Any = None) -> None:
        self.max_norm = max_norm
        self.gamma = gamma
        self.server_lr = server_lr
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        self.gamma_ = replacement_gamma(n_clients, self.server_lr) if self.gamma is None else float(self.gamma)
        return project_l2(self.gamma_ * own, self.max_norm)
