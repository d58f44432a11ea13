"""SIG: the sinusoid on the target class only, labels kept, and bad input."""

import numpy as np
import pytest

from poisonlab.attacks.data import SIG
from poisonlab.attacks.triggers import sinusoid
from poisonlab.exceptions import DataError, InvalidParameterError

from .._helpers import _images


def test_sig_touches_only_target_class_and_keeps_labels():
    X, y = _images()
    res = SIG(target=2, n_poison=8, delta=0.05, clip=(0, 1), random_state=0).poison(X, y)
    assert np.array_equal(res.y, y) and (y[res.indices] == 2).all()
    diff = res.X[res.indices] - X[res.indices]
    assert np.allclose(diff[:, 0, 0], sinusoid(10, 10, 0.05, 6)[0], atol=1e-6)  # inside [0.2, 0.6]: no clipping
    assert res.info["fraction_of_target_class"] == pytest.approx(8 / 20)
    T = SIG(target=2, n_poison=8, delta=0.05, test_delta=0.1, clip=(0, 1), random_state=0)
    T.poison(X, y)
    assert np.abs(T.apply_trigger(X[:2]) - X[:2]).max() == pytest.approx(np.abs(sinusoid(10, 10, 0.1, 6)).max(), abs=1e-6)


def test_sig_bad_input():
    X, y = _images()
    with pytest.raises(InvalidParameterError, match="only 20 samples in target class 0"):
        SIG(target=0, n_poison=21).poison(X, y)
    with pytest.raises(InvalidParameterError, match="delta"):
        SIG(target=0, n_poison=2, delta=0).poison(X, y)
    with pytest.raises(DataError):
        SIG(target=0, n_poison=2).poison(X.reshape(60, -1), y)
