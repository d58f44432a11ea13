"""Random and targeted label flips: which samples change, to what, and bad input."""

import numpy as np
import pytest

from poisonlab import InvalidParameterError
from poisonlab.attacks.data import RandomLabelFlip, TargetedLabelFlip


def test_random_label_flip_never_keeps_the_label():
    y = np.arange(1000) % 10
    res = RandomLabelFlip(poison_rate=0.3, random_state=0).poison(np.zeros((1000, 2)), y)
    m = res.poison_mask
    assert m.sum() == 300 and (res.y[m] != y[m]).all() and (res.y[~m] == y[~m]).all()
    assert set(res.y[m]) == set(range(10)), "flips spread over all other classes"


def test_targeted_flip():
    y = np.repeat(np.arange(3), 10)
    res = TargetedLabelFlip(source=1, target=2, poison_rate=0.5, random_state=0).poison(np.zeros((30, 1)), y)
    assert res.n_poison == 5 and (y[res.poison_mask] == 1).all() and (res.y[res.poison_mask] == 2).all()
    with pytest.raises(InvalidParameterError, match="must differ"):
        TargetedLabelFlip(source=1, target=1, random_state=0).poison(np.zeros((30, 1)), y)
    with pytest.raises(InvalidParameterError, match="source must be an existing class"):
        TargetedLabelFlip(source=7, target=1, random_state=0).poison(np.zeros((30, 1)), y)
    y_empty = np.array([0, 0, 2, 2])
    with pytest.raises(InvalidParameterError, match="source class 1 has no samples"):
        TargetedLabelFlip(source=1, target=0, n_classes=3, random_state=0).poison(np.zeros((4, 1)), y_empty)
