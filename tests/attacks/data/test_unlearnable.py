"""Error-minimising noise (Huang et al. 2021) and the PGD primitives it adds to models/."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from poisonlab.attacks.data import Unlearnable
from poisonlab.attacks.data.unlearnable import reached_stop
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.models import ModelSpec, TorchClassifier, TrainConfig, build_model
from poisonlab.models.architectures import model_factory
from poisonlab.models.gradients import class_wise_pgd_tensor, pgd, pgd_tensor

FAST = {"steps": 2, "train_steps": 2, "max_iter": 2}


def _net(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model("cnn", ModelSpec((1, 8, 8), 10), widths=(4, 8), hidden=16)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (60, 1, 8, 8)).astype(np.float32)
    return X, np.arange(60) % 10


def test_stop_rule_is_strict():
    assert reached_stop(0.995, 0.99) and not reached_stop(0.99, 0.99) and not reached_stop(0.5, 0.99)


def test_pgd_with_init_continues_and_minimises():
    """``init`` replaces the random start (no steps: the start is returned, projected), and
    targeted PGD on the true labels lowers their loss: the inner minimum of eq. 2."""
    net = _net().eval()
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    t = torch.arange(16) % 10
    init = torch.full_like(x, 0.5)
    start = pgd_tensor(net, x, t, eps=0.05, steps=0, step_size=0.01, init=init)
    assert torch.allclose(start - x, torch.full_like(x, 0.05))
    low = pgd_tensor(net, x, t, eps=0.1, steps=10, step_size=0.02, targeted=True, init=torch.zeros_like(x))
    with torch.no_grad():
        assert F.cross_entropy(net(low), t) < F.cross_entropy(net(x), t)
    X = x.numpy()
    same = pgd(net, X, t.numpy(), eps=0.05, steps=0, step_size=0.01, init=np.full_like(X, -1.0))
    assert np.allclose(same - X, -0.05)


def test_class_wise_pgd_shares_one_noise_per_class_and_lowers_the_loss():
    net = _net().eval()
    x = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    t = torch.arange(20) % 4
    delta = class_wise_pgd_tensor(net, x, t, torch.zeros(10, 1, 8, 8), eps=0.1, steps=10, step_size=0.02)
    assert delta.shape == (10, 1, 8, 8) and delta.abs().max() <= 0.1 + 1e-7
    assert torch.all(delta[4:] == 0), "classes absent from the batch must not move"
    with torch.no_grad():
        assert F.cross_entropy(net(x + delta[t]), t) < F.cross_entropy(net(x), t)
    up = class_wise_pgd_tensor(net, x, t, torch.zeros(10, 1, 8, 8), eps=0.1, steps=10, step_size=0.02,
                               minimise=False)
    with torch.no_grad():
        assert F.cross_entropy(net(x + up[t]), t) > F.cross_entropy(net(x), t)


@pytest.mark.parametrize("mode", ["sample_wise", "class_wise"])
def test_budget_labels_range_and_model_untouched(small, mode):
    X, y = small
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    res = Unlearnable(mode=mode, random_state=0, **FAST).poison(X, y, model=net)
    assert np.abs(res.X - X).max() <= 8 / 255 + 1e-6
    assert res.X.min() >= 0 and res.X.max() <= 1 and res.X.dtype == X.dtype
    assert np.array_equal(res.y, y) and res.info["labels_changed"] == 0 and res.poison_mask.all()
    assert res.info["mode"] == mode and 1 <= res.info["iterations"] <= 2
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters())), "the given network was trained"


def test_class_wise_noise_is_shared_within_a_class():
    X = np.full((30, 1, 8, 8), 0.5, np.float32)  # mid-grey: no clipping, the noise shows as is
    y = np.arange(30) % 3
    res = Unlearnable(mode="class_wise", random_state=0, **FAST).poison(X, y, model=_net())
    noise = res.X - X
    for c in range(3):
        assert np.allclose(noise[y == c], noise[y == c][0])
    assert not np.allclose(noise[y == 0][0], noise[y == 1][0])


def test_only_the_chosen_fraction_changes_and_seeds_reproduce(small):
    X, y = small
    a = Unlearnable(poison_rate=0.25, random_state=3, **FAST).poison(X, y, model=_net())
    b = Unlearnable(poison_rate=0.25, random_state=3, **FAST).poison(X, y, model=_net())
    assert a.n_poison == 15 and np.array_equal(a.X, b.X) and np.array_equal(a.poison_mask, b.poison_mask)
    changed = (a.X != X).reshape(len(X), -1).any(axis=1)
    assert np.array_equal(changed, a.poison_mask)


def test_stops_once_the_perturbed_data_is_fit(small):
    X, y = small
    seen = []
    res = Unlearnable(mode="class_wise", eps=0.3, steps=1, step_size=0.1, train_steps=20, max_iter=30, lr=1e-2,
                      random_state=0, callback=lambda stage, info: seen.append(info)).poison(X, y, model=_net())
    assert res.info["stopped_early"] and res.info["crafting_train_accuracy"] > 0.99
    assert len(seen) == res.info["iterations"] < 30


@pytest.mark.parametrize("params, match", [
    ({"eps": 0.0}, "eps"), ({"eps": 2.0}, "eps"), ({"poison_rate": 1.2}, "poison_rate"),
    ({"mode": "batch_wise"}, "mode"), ({"stop_accuracy": 0.0}, "stop_accuracy"), ({"max_iter": 0}, "max_iter"),
    ({"clip": (0.0,)}, "clip"),
])
def test_bad_parameters_raise_one_line_errors(small, params, match):
    X, y = small
    with pytest.raises(InvalidParameterError, match=match) as err:
        Unlearnable(**params).poison(X, y, model=_net())
    assert "\n" not in str(err.value)


def test_bad_inputs(small):
    X, y = small
    with pytest.raises(DataError, match="dimensions"):
        Unlearnable().poison(X[:, 0, 0], y, model=_net())
    with pytest.raises(DataError, match="clip"):
        Unlearnable().poison(X - 0.5, y, model=_net())
    with pytest.raises(InvalidParameterError, match="model"):
        Unlearnable().poison(X, y)


def test_noise_makes_digits_harder_to_learn():
    """Digits 8x8, every training image perturbed at L-inf 0.2 (class-wise, 1 step per batch;
    at most 10 outer iterations); victims trained 5 epochs. Measured when written: clean
    79-80%, class-wise 54-63% (seeds 0-2); the floor is a 10-point drop."""
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    d = load_digits()
    X, y = (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)
    Xtr, ytr, Xte, yte = X[:1200], y[:1200], X[1200:], y[1200:]
    factory = model_factory("cnn", "image", widths=(8, 16), hidden=32)
    cfg = TrainConfig(epochs=5, batch_size=64, lr=3e-3, seed=0)
    clean = np.mean(TorchClassifier(factory, config=cfg).fit(Xtr, ytr).predict(Xte) == yte)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = factory(ModelSpec((1, 8, 8), 10))
    res = Unlearnable(eps=0.2, mode="class_wise", steps=1, step_size=0.05, train_steps=10, max_iter=10, lr=3e-3,
                      batch_size=64, random_state=0).poison(Xtr, ytr, model=net)
    victim = TorchClassifier(factory, config=cfg).fit(res.X, res.y)
    assert clean - np.mean(victim.predict(Xte) == yte) >= 0.10
