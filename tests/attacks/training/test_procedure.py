"""Training-procedure tampering: the validation poisoning and config sabotage."""

import numpy as np
import pytest

from poisonlab.attacks.training import ValidationPoisoning, sabotage
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.models import TrainConfig


def test_validation_poisoning_relabels_the_source_class():
    y = np.arange(50) % 5
    res = ValidationPoisoning(source_class=3, target_class=1, fraction=0.5, random_state=0).poison(np.zeros((50, 2)), y)
    assert res.n_poison == 5 and (y[res.indices] == 3).all() and (res.y[res.indices] == 1).all()
    with pytest.raises(DataError, match="no sample of class 3"):
        ValidationPoisoning(source_class=3, target_class=1).poison(np.zeros((8, 2)), np.array([0, 1, 2, 0, 1, 2, 4, 4]))
    with pytest.raises(InvalidParameterError, match="differ"):
        ValidationPoisoning(source_class=1, target_class=1).poison(np.zeros((8, 2)), np.arange(8) % 4)


def test_sabotage_records_changes_and_leaves_the_honest_config():
    honest = TrainConfig(epochs=8, lr=1e-3)
    bad, record = sabotage(honest, "lr_spike")
    assert bad.lr == pytest.approx(0.03) and record == {"lr": (1e-3, bad.lr)} and honest.lr == 1e-3
    bad, record = sabotage(honest, label_smoothing=0.5)
    assert record == {"label_smoothing": (0.0, 0.5)}
    with pytest.raises(InvalidParameterError, match="unknown sabotage"):
        sabotage(honest, "nope")
    with pytest.raises(InvalidParameterError, match="no field"):
        sabotage(honest, learning_rate=1.0)
    with pytest.raises(InvalidParameterError, match="label_smoothing"):
        sabotage(honest, label_smoothing=1.5)
