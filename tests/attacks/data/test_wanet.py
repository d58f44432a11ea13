"""WaNet: the warp and noise modes, the test-time trigger, and bad input."""

import numpy as np
import pytest

from poisonlab.attacks.data import WaNet
from poisonlab.exceptions import InvalidParameterError

from .._helpers import _images


def test_wanet_poison_and_noise_mode():
    X, y = _images(n=90)
    res = WaNet(target=0, n_poison=9, cross_ratio=2.0, random_state=1).poison(X, y)
    relabelled = res.poison_mask & (res.y != y)
    noise = res.poison_mask & (res.y == y)
    assert relabelled.sum() == 9 and noise.sum() == 18 and (res.y[relabelled] == 0).all()
    atk = WaNet(target=0, n_poison=9, random_state=1)
    atk.poison(X, y)
    # the test-time trigger is exactly the training warp (noise-mode samples got a jittered one)
    idx = np.flatnonzero(relabelled)
    assert np.allclose(atk.apply_trigger(X[idx]), res.X[idx])


def test_wanet_bad_input():
    X, y = _images()
    with pytest.raises(InvalidParameterError, match="k"):
        WaNet(k=1, n_poison=2).poison(X, y)
    with pytest.raises(InvalidParameterError, match="strength"):
        WaNet(strength=0, n_poison=2).poison(X, y)
    with pytest.raises(Exception, match="poison"):
        WaNet().apply_trigger(X)
