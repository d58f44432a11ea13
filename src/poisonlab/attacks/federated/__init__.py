"""Federated model-poisoning attacks: what malicious clients send instead of their honest updates.

Every class follows :class:`poisonlab.base.BaseUpdateAttack`: ``craft(own_updates, *,
honest_updates=None, n_clients=None)`` returns the malicious clients' updates, and ``knowledge``
declares what the attacker sees ("own": its own updates; "honest": the round's honest updates too).
"""

from .alie import ALIE
from .byzantine import GaussianNoise, SignFlip
from .ipm import IPM
from .min_max import MinMax, MinSum
from .scaling import ConstrainAndScale, ModelReplacement

__all__ = ["ALIE", "ConstrainAndScale", "GaussianNoise", "IPM", "MinMax", "MinSum", "ModelReplacement",
           "SignFlip"]
