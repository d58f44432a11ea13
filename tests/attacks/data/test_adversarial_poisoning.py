"""Adversarial poisoning (Fowl et al. 2021): budget, labels, fraction, seeds, errors, strength."""

import numpy as np
import pytest
import torch

from poisonlab.attacks.data import AdversarialPoisoning
from poisonlab.attacks.data.adversarial_poisoning import permuted_class
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.models import ModelSpec, TorchClassifier, TrainConfig, build_model
from poisonlab.models.architectures import model_factory


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y = (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)
    return X[:1200], y[:1200], X[1200:], y[1200:]


def _net(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model("cnn", ModelSpec((1, 8, 8), 10), widths=(4, 8), hidden=16).eval()


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (60, 1, 8, 8)).astype(np.float32)
    return X, np.arange(60) % 10


def test_permuted_class_is_a_shift_without_fixed_points():
    assert permuted_class(np.array([0, 3, 9]), 10).tolist() == [1, 4, 0]
    y = np.arange(7)
    assert not np.any(permuted_class(y, 7) == y)


@pytest.mark.parametrize("mode", ["class_targeted", "untargeted"])
def test_budget_labels_and_range(small, mode):
    X, y = small
    res = AdversarialPoisoning(eps=8 / 255, mode=mode, steps=5, random_state=0).poison(X, y, model=_net())
    assert np.abs(res.X - X).max() <= 8 / 255 + 1e-6
    assert res.X.min() >= 0 and res.X.max() <= 1 and res.X.dtype == X.dtype
    assert np.array_equal(res.y, y) and res.info["labels_changed"] == 0
    assert res.poison_mask.all() and res.target is None and res.info["mode"] == mode
    assert res.info["linf"] <= 8 / 255 + 1e-6


def test_only_the_chosen_fraction_changes(small):
    X, y = small
    res = AdversarialPoisoning(poison_rate=0.3, steps=3, random_state=1).poison(X, y, model=_net())
    assert res.n_poison == 18 and res.info["poison_rate"] == pytest.approx(0.3)
    assert np.array_equal(res.X[~res.poison_mask], X[~res.poison_mask])
    changed = (res.X != X).reshape(len(X), -1).any(axis=1)
    assert np.array_equal(changed, res.poison_mask)
    assert AdversarialPoisoning(n_poison=7, steps=2, random_state=1).poison(X, y, model=_net()).n_poison == 7


def test_same_seed_same_poison_and_different_seed_different(small):
    X, y = small
    a = AdversarialPoisoning(poison_rate=0.5, steps=3, random_state=4).poison(X, y, model=_net())
    b = AdversarialPoisoning(poison_rate=0.5, steps=3, random_state=4).poison(X, y, model=_net())
    c = AdversarialPoisoning(poison_rate=0.5, steps=3, random_state=5).poison(X, y, model=_net())
    assert np.array_equal(a.X, b.X) and np.array_equal(a.poison_mask, b.poison_mask)
    assert not np.array_equal(a.poison_mask, c.poison_mask)


@pytest.mark.parametrize("params, match", [
    ({"eps": 0.0}, "eps"), ({"eps": -0.1}, "eps"), ({"eps": 1.0}, "eps"),
    ({"poison_rate": 1.5}, "poison_rate"), ({"poison_rate": 0.0}, "poison_rate"),
    ({"mode": "targeted"}, "mode"), ({"steps": 0}, "steps"), ({"clip": (1.0, 0.0)}, "clip"),
])
def test_bad_parameters_raise_one_line_errors(small, params, match):
    X, y = small
    with pytest.raises(InvalidParameterError, match=match) as err:
        AdversarialPoisoning(**params).poison(X, y, model=_net())
    assert "\n" not in str(err.value)


def test_bad_inputs(small):
    X, y = small
    with pytest.raises(DataError, match="dimensions"):
        AdversarialPoisoning().poison(X.reshape(len(X), -1), y, model=_net())
    with pytest.raises(DataError, match="clip"):
        AdversarialPoisoning().poison(X * 3, y, model=_net())
    with pytest.raises(InvalidParameterError, match="model"):
        AdversarialPoisoning().poison(X, y)
    with pytest.raises(InvalidParameterError, match="surrogate"):
        AdversarialPoisoning().poison(X, y, model=object())


def test_class_targeted_poisons_break_a_victim_on_digits():
    """Digits 8x8, every training image poisoned at L-inf 0.2 (10 PGD steps) against a surrogate
    trained 5 epochs on the clean images; a victim trained 5 epochs on the poisons. Measured
    when written: clean 79-80%, poisoned 11-37% (seeds 0-2); the floor is a 25-point drop."""
    torch.set_num_threads(1)
    Xtr, ytr, Xte, yte = _digits()
    cfg = TrainConfig(epochs=5, batch_size=64, lr=3e-3, seed=0)
    factory = model_factory("cnn", "image", widths=(8, 16), hidden=32)
    clean = TorchClassifier(factory, config=cfg).fit(Xtr, ytr)
    clean_acc = np.mean(clean.predict(Xte) == yte)
    res = AdversarialPoisoning(eps=0.2, steps=10, random_state=0).poison(Xtr, ytr, model=clean)
    assert res.info["surrogate_fooled"] > 0.5
    victim = TorchClassifier(factory, config=cfg).fit(res.X, res.y)
    assert clean_acc - np.mean(victim.predict(Xte) == yte) >= 0.25
