"""Gradient matching: the alignment loss by hand, alignment within budget, surrogate ensembles,
max-gradient selection, and bad input."""

import numpy as np
import pytest

from poisonlab.exceptions import DataError, InvalidParameterError

from .._helpers import _images, _surrogate


def test_alignment_loss_hand_values():
    import torch

    from poisonlab.attacks.data.gradient_matching import alignment_loss

    g = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
    assert float(alignment_loss(g, g)) == pytest.approx(0.0, abs=1e-6)
    assert float(alignment_loss(g, [-t for t in g])) == pytest.approx(2.0)
    orth = [torch.tensor([2.0, -1.0]), torch.tensor([[0.0]])]
    assert float(alignment_loss(g, orth)) == pytest.approx(1.0)


def test_gradient_matching_aligns_within_budget():
    from poisonlab.attacks.data import GradientMatching

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    model = _surrogate(X, y)
    atk = GradientMatching(adversarial_class=0, n_poison=10, eps=8 / 255, steps=60, augment=False, random_state=0)
    res = atk.poison(X, y, model=model, target_input=X[1])
    assert np.array_equal(res.y, y) and (y[res.indices] == 0).all()
    assert res.info["linf"] <= 8 / 255 + 1e-6
    short = GradientMatching(adversarial_class=0, n_poison=10, eps=8 / 255, steps=1, augment=False,
                             random_state=0).poison(X, y, model=model, target_input=X[1])
    assert res.info["alignment_loss"] < short.info["alignment_loss"] - 0.05


def test_gradient_matching_bad_input():
    from poisonlab.attacks.data import GradientMatching

    X, y = _images()
    model = _surrogate(X, y)
    with pytest.raises(InvalidParameterError, match="eps"):
        GradientMatching(eps=1.0, n_poison=2).poison(X, y, model=model, target_input=X[0])
    with pytest.raises(DataError, match="target_input"):
        GradientMatching(n_poison=2).poison(X, y, model=model, target_input=np.zeros((2, 5)))
    with pytest.raises(InvalidParameterError, match="only 20 samples in adversarial class 1"):
        GradientMatching(adversarial_class=1, n_poison=30).poison(X, y, model=model, target_input=X[0])


def test_gradient_matching_ensemble_averages_alignment():
    """With two surrogates the reported loss is the mean of each surrogate's alignment loss at
    the crafted poisons, and a one-element list gives the same poison as the bare model."""
    import torch
    import torch.nn.functional as F

    from poisonlab.attacks.data import GradientMatching
    from poisonlab.attacks.data.gradient_matching import alignment_loss

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    models = [_surrogate(X, y, seed=s) for s in (0, 1)]
    kw = dict(adversarial_class=0, n_poison=10, eps=8 / 255, steps=30, augment=False, random_state=0)
    res = GradientMatching(**kw).poison(X, y, model=models, target_input=X[1])
    assert res.info["n_surrogates"] == 2

    def loss(m):
        ps = [p for p in m.module_.parameters()]
        tg = torch.autograd.grad(F.cross_entropy(m.module_(torch.tensor(X[1:2])), torch.tensor([0])), ps)
        pg = torch.autograd.grad(F.cross_entropy(m.module_(torch.tensor(res.X[res.indices])),
                                                 torch.tensor(y[res.indices])), ps)
        return float(alignment_loss(pg, tg))

    assert res.info["alignment_loss"] == pytest.approx(np.mean([loss(m) for m in models]), abs=1e-4)
    one = GradientMatching(**kw).poison(X, y, model=[models[0]], target_input=X[1])
    bare = GradientMatching(**kw).poison(X, y, model=models[0], target_input=X[1])
    assert np.array_equal(one.X, bare.X)
    with pytest.raises(InvalidParameterError, match="non-empty list"):
        GradientMatching(**kw).poison(X, y, model=[], target_input=X[1])
    with pytest.raises(InvalidParameterError, match="lr_schedule"):
        GradientMatching(**{**kw, "lr_schedule": "cosine"}).poison(X, y, model=models[0], target_input=X[1])


def test_gradient_matching_max_gradient_selection():
    """Per-sample gradient norms equal a per-sample autograd loop, and ``max_gradient`` perturbs
    exactly the adversarial-class samples with the largest norms."""
    import torch
    import torch.nn.functional as F

    from poisonlab.attacks.data import GradientMatching
    from poisonlab.attacks.data.gradient_matching import per_sample_gradient_norms

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    model = _surrogate(X, y)
    m = model.module_
    norms = per_sample_gradient_norms(m, X[:7], y[:7], batch_size=3)
    ps = list(m.parameters())
    loop = [float(torch.sqrt(sum((g ** 2).sum() for g in torch.autograd.grad(
        F.cross_entropy(m(torch.tensor(X[i:i + 1])), torch.tensor(y[i:i + 1])), ps)))) for i in range(7)]
    assert norms == pytest.approx(loop, rel=1e-4)
    cls = np.flatnonzero(y == 0)
    expect = np.sort(cls[np.argsort(-per_sample_gradient_norms(m, X[cls], y[cls]))[:5]])
    res = GradientMatching(adversarial_class=0, n_poison=5, eps=8 / 255, steps=5, augment=False,
                           selection="max_gradient", random_state=0).poison(X, y, model=model, target_input=X[1])
    assert np.array_equal(res.indices, expect)
    with pytest.raises(InvalidParameterError, match="selection"):
        GradientMatching(n_poison=2, selection="largest").poison(X, y, model=model, target_input=X[1])
