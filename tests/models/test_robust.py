"""Adversarial training: robustness bought, and its parameters checked."""

import numpy as np
import pytest

from poisonlab import InvalidParameterError
from poisonlab.models import TorchClassifier, TrainConfig, build_model


def test_adversarial_training_buys_robustness_and_checks_its_parameters():
    from poisonlab.models.gradients import pgd
    from poisonlab.models.robust import AdversarialTraining

    # feature 0 separates the classes by more than 2 eps (robust but noisy); features 1-59 each
    # by less than eps, together very reliably (non-robust): a standard model leans on them,
    # an adversarially trained one cannot
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    X = 0.5 + rng.normal(0, 0.03, (2000, 60))
    X[:, 0] = 0.5 + rng.normal(0, 0.1, 2000) + np.where(y == 1, 0.25, -0.25)
    X[:, 1:] += np.where(y == 1, 0.04, -0.04)[:, None]
    X = X.clip(0, 1).astype(np.float32)
    cfg = TrainConfig(epochs=8, lr=0.01, seed=0)
    mlp = lambda s: build_model("mlp", s, hidden=(32,))
    plain = TorchClassifier(mlp, config=cfg).fit(X, y)
    robust = TorchClassifier(mlp, config=cfg).fit(X, y, batch_transform=AdversarialTraining(eps=0.1, steps=5, ramp=10))
    attacked = lambda clf: np.mean(clf.predict(pgd(clf.module_, X[:500], y[:500], eps=0.1, steps=20)) == y[:500])
    assert np.mean(robust.predict(X) == y) > 0.98
    assert attacked(robust) > 0.9 > 0.75 > attacked(plain)  # measured 0.94 and 0.68
    with pytest.raises(InvalidParameterError, match="eps"):
        AdversarialTraining(eps=0)
    with pytest.raises(InvalidParameterError, match="norm"):
        AdversarialTraining(eps=0.1, norm="l3")
