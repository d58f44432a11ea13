"""Iterative trimmed loss: flipped labels are the trimmed ones; the maths of one trim."""

import numpy as np
import pytest

from poisonlab.defenses.training import TrimmedLoss
from poisonlab.defenses.training.trimmed_loss import keep_lowest
from poisonlab.exceptions import InvalidParameterError
from poisonlab.models import TrainConfig, model_factory


def test_keep_lowest_hand_values():
    assert keep_lowest(np.array([0.1, 2.0, 0.3, 5.0]), 0.5).tolist() == [True, False, True, False]
    assert keep_lowest(np.array([1.0, 1.0, 1.0, 1.0]), 0.25).tolist() == [True, True, True, False]


def test_flipped_labels_are_trimmed():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype("float32")
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    flipped = np.zeros(400, bool)
    flipped[rng.choice(400, 40, replace=False)] = True
    y_noisy = np.where(flipped, 1 - y, y)
    tl = TrimmedLoss(trim_fraction=0.1, warmup_epochs=2, random_state=0).fit(
        X, y_noisy, model_factory=model_factory("mlp", "tabular", hidden=(16,)),
        config=TrainConfig(epochs=8, lr=0.01, batch_size=32))
    assert tl.flags_[flipped].mean() >= 0.8          # recall floor for 10% random flips
    assert tl.flags_.sum() == 40 and len(tl.kept_per_epoch_) == 8
    assert tl.kept_per_epoch_[0].all() and not tl.kept_per_epoch_[-1].all()
    again = TrimmedLoss(trim_fraction=0.1, warmup_epochs=2, random_state=0).fit(
        X, y_noisy, model_factory=model_factory("mlp", "tabular", hidden=(16,)),
        config=TrainConfig(epochs=8, lr=0.01, batch_size=32))
    assert np.array_equal(again.scores_, tl.scores_)


def test_refuses_a_loader_factory_and_a_module():
    from torch import nn

    X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    y = np.arange(40) % 2
    with pytest.raises(InvalidParameterError, match="loader_factory"):
        TrimmedLoss().fit(X, y, model_factory=model_factory("mlp", "tabular"), loader_factory=lambda *a: [])
    with pytest.raises(InvalidParameterError, match="model_factory"):
        TrimmedLoss().fit(X, y, model_factory=nn.Linear(3, 2))
