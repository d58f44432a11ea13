"""Feature collision: poisons move onto the target in feature space, within the cap, and bad input."""

import numpy as np
import pytest

from poisonlab.exceptions import DataError, InvalidParameterError

from .._helpers import _images, _surrogate


def test_feature_collision_moves_poisons_onto_the_target_in_feature_space():
    from poisonlab.attacks.data import FeatureCollision

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    model = _surrogate(X, y)
    target = X[1].copy()  # a class-1 input; bases from class 2
    res = FeatureCollision(base_class=2, n_poison=3, beta=0.01, lr=0.05, steps=300, random_state=0).poison(
        X, y, model=model, target_input=target)
    assert np.array_equal(res.y, y) and (y[res.indices] == 2).all() and res.n_poison == 3
    before, after = np.array(res.info["feature_distance_before"]), np.array(res.info["feature_distance_after"])
    assert (after < 0.5 * before).all()
    capped = FeatureCollision(base_class=2, n_poison=3, beta=0.01, lr=0.05, steps=100, eps=0.05,
                              random_state=0).poison(X, y, model=model, target_input=target)
    assert capped.info["linf"] <= 0.05 + 1e-6


def test_feature_collision_bad_input():
    from poisonlab.attacks.data import FeatureCollision

    X, y = _images()
    model = _surrogate(X, y)
    with pytest.raises(DataError, match="target_input"):
        FeatureCollision(n_poison=2).poison(X, y, model=model, target_input=np.zeros((3, 3)))
    with pytest.raises(InvalidParameterError, match="watermark"):
        FeatureCollision(n_poison=2, watermark=1.0).poison(X, y, model=model, target_input=X[0])
    with pytest.raises(InvalidParameterError, match="only 20 samples in base class 0"):
        FeatureCollision(n_poison=21).poison(X, y, model=model, target_input=X[0])
    with pytest.raises(InvalidParameterError, match="target_input"):
        FeatureCollision(n_poison=2).poison(X, y, model=model)
