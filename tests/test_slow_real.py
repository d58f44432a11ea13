"""Slower checks on real data (run in CI; skip locally with -m 'not slow')."""

import numpy as np
import pytest

from poisonlab.attacks.data import BadNets, Blended
from poisonlab.data import load_mnist
from poisonlab.evaluation.experiment import run_backdoor
from poisonlab.models import TrainConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist_small(data_dir):
    s = load_mnist(data_dir)
    return s.train.subset(np.arange(12_000)), s.test.subset(np.arange(2_000))


def test_badnets_on_real_mnist(mnist_small):
    train, test = mnist_small
    # 5% poison so that 4 epochs on 12,000 digits learn the backdoor (R1's 1.2% needs R1's 20
    # epochs: the corner pixels sit under a single position of the first 5x5 convolution).
    out = run_backdoor(train, test, BadNets(target=7, poison_rate=0.05, value=1.0, random_state=0),
                       architecture="strip-mnist-cnn", config=TrainConfig(epochs=4, seed=0))
    assert out["poisoned"]["clean_accuracy"] >= 0.955
    assert out["poisoned"]["attack_success_rate"] >= 0.95
    assert out["clean"]["attack_success_rate"] <= 0.02


def test_blended_on_real_mnist_is_reproducible(mnist_small):
    train, test = mnist_small
    runs = [run_backdoor(train.subset(np.arange(6000)), test, Blended(target=0, n_poison=300, random_state=1),
                         architecture="strip-mnist-cnn", config=TrainConfig(epochs=2, seed=5),
                         clean_baseline=False)["poisoned"] for _ in range(2)]
    assert runs[0]["attack_success_rate"] == runs[1]["attack_success_rate"]
    assert runs[0]["confusion_matrix"] == runs[1]["confusion_matrix"]
    assert runs[0]["attack_success_rate"] >= 0.8
