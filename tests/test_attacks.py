"""The first attacks: what they change, the numbers they promise, and bad input."""

import numpy as np
import pytest

from poisonlab import DataError, InvalidParameterError, NotFittedError
from poisonlab.attacks.data import BadNets, Blended, RandomLabelFlip, TargetedLabelFlip


def test_badnets_r1_style(images):
    X, y = images
    atk = BadNets(target=3, n_poison=9, value=1.0, random_state=0)
    res = atk.poison(X, y)
    assert res.n_poison == 9 and res.target == 3
    assert (y[res.poison_mask] != 3).all(), "all-to-one poisons come from other classes"
    assert (res.y[res.poison_mask] == 3).all()
    assert np.all(res.X[res.poison_mask][:, :, -3:, -3:] == 1.0)
    assert res.info["linf"] == pytest.approx(1.0 - X[res.poison_mask][:, :, -3:, -3:].min(), abs=1e-6)
    assert res.info["poison_rate"] == pytest.approx(9 / 60)


def test_badnets_rate_and_seeds(images):
    X, y = images
    a = BadNets(poison_rate=0.1, random_state=1).poison(X, y)
    b = BadNets(poison_rate=0.1, random_state=2).poison(X, y)
    assert a.n_poison == 6 and not np.array_equal(a.poison_mask, b.poison_mask)


def test_badnets_all_to_all(images):
    X, y = images
    res = BadNets(target_mode="all-to-all", n_poison=20, random_state=0).poison(X, y)
    m = res.poison_mask
    assert np.array_equal(res.y[m], (y[m] + 1) % 4) and res.target is None


def test_badnets_value_defaults_to_data_max():
    X = np.zeros((20, 6, 6), dtype=np.uint8)
    X[0, 0, 0] = 255
    y = np.arange(20) % 2
    res = BadNets(target=0, n_poison=2, random_state=0).poison(X, y)
    assert res.X[res.poison_mask][:, -1, -1].tolist() == [255, 255]


def test_badnets_any_size_and_channels():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(12, 3, 32, 20)).astype(np.float32)
    y = np.arange(12) % 3
    res = BadNets(target=1, n_poison=3, patch_size=4, location="top-left", value=1.0, random_state=0).poison(X, y)
    assert np.all(res.X[res.poison_mask][:, :, :4, :4] == 1.0)


@pytest.mark.parametrize("kwargs, err, msg", [
    ({"poison_rate": 1.5}, InvalidParameterError, "poison_rate must be in"),
    ({"poison_rate": 0.9}, InvalidParameterError, "only 45 samples outside target class 0"),
    ({"target": 9}, InvalidParameterError, r"target must be an existing class in 0..3; got 9"),
    ({"target": -1}, InvalidParameterError, r"BadNets.target must be a class index \(an int >= 0\); got -1"),
    ({"patch_size": 0}, InvalidParameterError, r"BadNets.patch_size must be an int in \[1, inf\); got 0"),
    ({"patch_size": 20}, InvalidParameterError, "does not fit"),
    ({"target_mode": "one"}, InvalidParameterError, "target_mode must be one of"),
])
def test_badnets_bad_parameters(images, kwargs, err, msg):
    X, y = images
    with pytest.raises(err, match=msg):
        BadNets(**kwargs, random_state=0).poison(X, y)


def test_bad_data(images):
    X, y = images
    Xn = X.copy()
    Xn[4, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        BadNets(random_state=0).poison(Xn, y)
    with pytest.raises(DataError, match="dimensions"):
        BadNets(random_state=0).poison(X.reshape(60, -1), y)
    with pytest.raises(DataError, match="59 labels but X has 60"):
        BadNets(random_state=0).poison(X, y[:-1])
    with pytest.raises(DataError, match="non-negative"):
        BadNets(random_state=0).poison(X, y - 1)
    with pytest.raises(DataError, match="at least 2 classes"):
        RandomLabelFlip(random_state=0).poison(X, np.zeros(60, int))


def test_blended_key_and_test_alpha(images):
    X, y = images
    atk = Blended(target=2, n_poison=5, alpha=0.1, test_alpha=0.3, random_state=4)
    with pytest.raises(NotFittedError, match="call poison"):
        atk.apply_trigger(X)
    res = atk.poison(X, y)
    m = res.poison_mask
    assert np.allclose(res.X[m], 0.9 * X[m] + 0.1 * atk.key_, atol=1e-6)
    assert np.allclose(atk.apply_trigger(X[:2]), 0.7 * X[:2] + 0.3 * atk.key_, atol=1e-6)
    again = Blended(target=2, n_poison=5, alpha=0.1, random_state=4)
    again.poison(X, y)
    assert np.array_equal(again.key_, atk.key_), "the same seed draws the same key"
    key = np.full((1, 8, 8), 0.5)
    given = Blended(target=2, n_poison=5, key=key, random_state=0)
    assert np.allclose(given.apply_trigger(X[:1]), 0.8 * X[:1] + 0.1)
    with pytest.raises(InvalidParameterError, match="alpha must be in"):
        Blended(alpha=1.0, random_state=0).poison(X, y)
    with pytest.raises(InvalidParameterError, match="does not fit"):
        Blended(key=np.zeros((3, 3)), random_state=0).poison(X, y)


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
