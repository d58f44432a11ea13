"""BadNets: the patch it stamps, the numbers it promises, bad input, and the backdoor on real MNIST
(slow)."""

import numpy as np
import pytest

from poisonlab import DataError, InvalidParameterError
from poisonlab.attacks.data import BadNets, RandomLabelFlip
from poisonlab.evaluation.experiment import run_backdoor
from poisonlab.models import TrainConfig


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


@pytest.mark.slow
def test_badnets_on_real_mnist(mnist_small):
    train, test = mnist_small
    # 5% poison so that 4 epochs on 12,000 digits learn the backdoor (R1's 1.2% needs R1's 20
    # epochs: the corner pixels sit under a single position of the first 5x5 convolution).
    out = run_backdoor(train, test, BadNets(target=7, poison_rate=0.05, value=1.0, random_state=0),
                       architecture="strip-mnist-cnn", config=TrainConfig(epochs=4, seed=0))
    assert out["poisoned"]["clean_accuracy"] >= 0.955
    assert out["poisoned"]["attack_success_rate"] >= 0.95
    assert out["clean"]["attack_success_rate"] <= 0.02
