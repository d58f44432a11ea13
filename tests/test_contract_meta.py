"""The contract checks must catch objects that break the rules."""

import numpy as np
import pytest

from poisonlab.attacks.data import BadNets
from poisonlab.base import BaseAttack, PoisonResult
from poisonlab.defenses.data import KNNLabelConsistency

from .contract import check_attack, check_detector


class _Unseeded(BadNets):
    """Ignores random_state: every call draws a different mask."""

    def _poison(self, X, y, *, n_classes, rng, **needs):
        return super()._poison(X, y, n_classes=n_classes, rng=np.random.default_rng(), **needs)


class _LiesAboutMask(BaseAttack):
    """Changes samples it does not report."""

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def _poison(self, X, y, *, n_classes, rng, **needs):
        y2 = (y + 1) % n_classes
        mask = np.zeros(len(y), bool)
        mask[0] = True
        return PoisonResult(np.array(X), y2, mask, np.array([0]))


class _BadFlags(KNNLabelConsistency):
    def fit(self, X, y):
        super().fit(X, y)
        self.flags_ = ~self.flags_
        return self


@pytest.mark.parametrize("cls, msg", [(_Unseeded, "same random_state"), (_LiesAboutMask, "outside poison_mask")])
def test_contract_catches_broken_attacks(cls, msg):
    with pytest.raises(AssertionError, match=msg):
        check_attack(cls)


def test_contract_catches_broken_detector():
    with pytest.raises(AssertionError, match="scores_ > threshold_"):
        check_detector(_BadFlags)
