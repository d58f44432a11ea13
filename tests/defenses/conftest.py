"""Fixtures shared by the model- and inference-stage defense tests."""

import pytest

from poisonlab.attacks.data import BadNets
from poisonlab.data import load_digits
from poisonlab.models import TorchClassifier, TrainConfig, build_model


def _cnn(spec):
    return build_model("cnn", spec, widths=(16, 32), hidden=64)


@pytest.fixture(scope="session")
def backdoored_digits():
    s = load_digits()
    atk = BadNets(target=3, poison_rate=0.1, value=1.0, random_state=0)
    res = atk.poison(s.train.X, s.train.y)
    clf = TorchClassifier(_cnn, config=TrainConfig(epochs=30, lr=3e-3, batch_size=64)).fit(res.X, res.y)
    return s, atk, clf
