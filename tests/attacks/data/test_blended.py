"""Blended: the key, the test-time alpha, bad input, and reproducibility on real MNIST (slow)."""

import numpy as np
import pytest

from poisonlab import InvalidParameterError, NotFittedError
from poisonlab.attacks.data import Blended
from poisonlab.evaluation.experiment import run_backdoor
from poisonlab.models import TrainConfig


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


@pytest.mark.slow
def test_blended_on_real_mnist_is_reproducible(mnist_small):
    train, test = mnist_small
    runs = [run_backdoor(train.subset(np.arange(6000)), test, Blended(target=0, n_poison=300, random_state=1),
                         architecture="strip-mnist-cnn", config=TrainConfig(epochs=2, seed=5),
                         clean_baseline=False)["poisoned"] for _ in range(2)]
    assert runs[0]["attack_success_rate"] == runs[1]["attack_success_rate"]
    assert runs[0]["confusion_matrix"] == runs[1]["confusion_matrix"]
    assert runs[0]["attack_success_rate"] >= 0.8
