"""Label-consistent poisoning: PGD within budget against a surrogate, the directions, the
four-corner trigger, and bad input."""

import numpy as np
import pytest

from poisonlab.attacks.data import LabelConsistent
from poisonlab.exceptions import DataError, InvalidParameterError

from .._helpers import _images, _surrogate


def test_label_consistent_pgd_stays_in_budget_and_hurts_the_surrogate():
    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0  # learnable: each class lights one pixel
    model = _surrogate(X, y)
    atk = LabelConsistent(target=1, n_poison=20, eps=0.1, steps=20, patch_size=2, random_state=0)
    res = atk.poison(X, y, model=model)
    assert np.array_equal(res.y, y) and (y[res.indices] == 1).all()
    outside_patch = (res.X - X)[res.indices][:, :, :8, :8]
    assert np.abs(outside_patch).max() <= 0.1 + 1e-6
    plain = LabelConsistent(target=1, n_poison=20, perturb=False, patch_size=2, random_state=0).poison(X, y, model=model)
    # PGD raised the surrogate's loss on the (pre-trigger) poisons
    import torch
    import torch.nn.functional as F

    def loss(Z):
        with torch.no_grad():
            return float(F.cross_entropy(model.module_(torch.as_tensor(Z)), torch.as_tensor(y[res.indices])))
    base = X[res.indices].copy()
    adv = res.X[res.indices].copy()
    adv[:, :, 8:, 8:] = base[:, :, 8:, 8:]
    assert loss(adv) > loss(base) + 0.5
    assert np.array_equal(plain.X[:, :, :8, :8], X[:, :, :8, :8])


def test_label_consistent_bad_input():
    X, y = _images()
    model = _surrogate(X, y)
    with pytest.raises(InvalidParameterError, match="eps"):
        LabelConsistent(eps=1.5, n_poison=2).poison(X, y, model=model)
    with pytest.raises(InvalidParameterError, match="eps"):
        LabelConsistent(eps=0, n_poison=2).poison(X, y, model=model)
    with pytest.raises(InvalidParameterError, match="model"):
        LabelConsistent(n_poison=2).poison(X, y)
    with pytest.raises(DataError, match="do not fit the surrogate"):
        LabelConsistent(n_poison=2).poison(np.zeros((60, 1, 28, 28), np.float32) + 0.1, y, model=model)
    with pytest.raises(InvalidParameterError, match="torch module"):
        LabelConsistent(n_poison=2).poison(X, y, model=object())
    with pytest.raises(InvalidParameterError, match="only 20 samples in target class 0"):
        LabelConsistent(target=0, n_poison=25).poison(X, y, model=model)
    with pytest.raises(InvalidParameterError, match="pattern"):
        LabelConsistent(n_poison=2, pattern="stripes").poison(X, y, model=model)
    with pytest.raises(InvalidParameterError, match="direction"):
        LabelConsistent(n_poison=2, direction="sideways").poison(X, y, model=model)


def test_label_consistent_random_class_direction_moves_poisons_toward_other_classes():
    import torch

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    model = _surrogate(X, y)
    res = LabelConsistent(target=1, n_poison=20, eps=0.5, steps=30, patch_size=2, direction="random-class",
                          random_state=0).poison(X, y, model=model)
    adv = res.X[res.indices].copy()
    adv[:, :, 8:, 8:] = X[res.indices][:, :, 8:, 8:]  # judge the perturbation, not the patch
    with torch.no_grad():
        before = torch.softmax(model.module_(torch.as_tensor(X[res.indices])), 1)[:, 1]
        after = torch.softmax(model.module_(torch.as_tensor(adv)), 1)[:, 1]
    assert float(after.mean()) < float(before.mean()) - 0.2  # away from the (true) target class
    assert np.abs(res.X - X)[res.indices][:, :, :8, :8].max() <= 0.5 + 1e-6


def test_label_consistent_four_corner_checkerboard():
    atk = LabelConsistent(patch_size=3, pattern="checkerboard", location="four-corners")
    out = atk.apply_trigger(np.full((2, 1, 10, 10), 0.5))
    board = np.array([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]])
    for rs, cs in ((slice(0, 3), slice(0, 3)), (slice(0, 3), slice(7, 10)), (slice(7, 10), slice(0, 3)),
                   (slice(7, 10), slice(7, 10))):
        assert np.array_equal(out[0, 0, rs, cs], board)
    assert (out[:, :, 3:7, :] == 0.5).all()  # nothing between the corners


def test_label_consistent_reduced_amplitude_on_poisons_full_patch_at_test_time():
    X, y = _images(n=120)
    model = _surrogate(X, y)
    amp = 32 / 255
    atk = LabelConsistent(target=1, n_poison=10, perturb=False, patch_size=3, pattern="checkerboard",
                          location="four-corners", amplitude=amp, random_state=0)
    res = atk.poison(X, y, model=model)
    board = np.array([[1.0, -1, 1], [-1, 1, -1], [1, -1, 1]])
    H, W = X.shape[-2:]
    diff = (res.X - X)[res.indices]
    for rs, cs in ((slice(0, 3), slice(0, 3)), (slice(0, 3), slice(W - 3, W)),
                   (slice(H - 3, H), slice(0, 3)), (slice(H - 3, H), slice(W - 3, W))):
        want = np.clip(X[res.indices][:, :, rs, cs] + amp * board, 0, 1) - X[res.indices][:, :, rs, cs]
        np.testing.assert_allclose(diff[:, :, rs, cs], want, atol=1e-6)
    assert np.abs(diff).max() <= amp + 1e-6
    assert (diff[:, :, 3:H - 3, :] == 0).all()  # nothing between the corners
    # test inputs get the full-amplitude checkerboard (Turner et al.)
    out = atk.apply_trigger(np.full((2, 1, 10, 10), 0.5))
    assert np.array_equal(out[0, 0, :3, :3], (board > 0).astype(float))
    with pytest.raises(InvalidParameterError, match="amplitude"):
        LabelConsistent(n_poison=2, amplitude=0).poison(X, y, model=model)
