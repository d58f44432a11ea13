"""train_many: many small models at once, each a function of its own subset and seed alone."""

import numpy as np
import pytest
import torch
from torch import nn

from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.models import TrainConfig
from poisonlab.models.ensemble import (
    GaborFeatures,
    members_from_groups,
    model_seed,
    train_many,
)


def _data(n=90, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def _linear(spec):
    return nn.Linear(spec.input_shape[0], spec.n_classes)


def _mlp(spec):
    return nn.Sequential(nn.Linear(spec.input_shape[0], 8), nn.ReLU(), nn.Linear(8, spec.n_classes))


CFG = TrainConfig(epochs=5, lr=0.05, batch_size=4, seed=3)


def test_a_model_depends_on_its_own_subset_only():
    # the certificate's assumption: changing subset 2 (insert, remove, relabel) leaves models 0, 1, 3
    X, y = _data()
    members = members_from_groups(np.arange(90) % 4, 4)
    a = train_many(_mlp, X, y, members, config=CFG)
    y2 = y.copy()
    y2[members[2][:5]] = 1 - y2[members[2][:5]]
    changed = [m.copy() for m in members]
    changed[2] = np.r_[changed[2][3:], changed[0][:2]]        # remove 3, add 2 (padding width changes too)
    b = train_many(_mlp, X, y2, changed, config=CFG)
    for name in a.params:
        for m in (0, 1, 3):
            assert torch.allclose(a.params[name][m], b.params[name][m], atol=1e-6), (name, m)
        assert not torch.allclose(a.params[name][2], b.params[name][2])


def test_a_model_trained_alone_equals_the_same_model_in_a_stack():
    X, y = _data()
    members = members_from_groups(np.arange(90) % 3, 3)
    stack = train_many(_linear, X, y, members, config=CFG)
    # model 1 alone in a stack of one: same seed index needs the same position -> pad with empties
    alone = train_many(_linear, X, y, [np.array([], int), members[1]], config=CFG)
    for name in stack.params:
        assert torch.allclose(stack.params[name][1], alone.params[name][1], atol=1e-6)


def test_full_batch_adam_matches_torch_adam():
    X, y = _data(n=24)
    cfg = TrainConfig(epochs=6, lr=0.05, batch_size=24, seed=1, weight_decay=0.01)
    stack = train_many(_linear, X, y, [np.arange(24)], config=cfg)
    ref = nn.Linear(4, 2)
    torch.random.default_generator.manual_seed(model_seed(1, 0))
    ref.reset_parameters()
    opt = torch.optim.Adam(ref.parameters(), lr=0.05, weight_decay=0.01)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(6):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(Xt), yt).backward()
        opt.step()
    assert torch.allclose(stack.params["weight"][0], ref.weight, atol=1e-5)
    assert torch.allclose(stack.params["bias"][0], ref.bias, atol=1e-5)


def test_full_batch_sgd_matches_torch_sgd():
    X, y = _data(n=24)
    cfg = TrainConfig(epochs=4, lr=0.1, batch_size=24, seed=1, optimizer="sgd", momentum=0.9)
    stack = train_many(_linear, X, y, [np.arange(24)], config=cfg)
    ref = nn.Linear(4, 2)
    torch.random.default_generator.manual_seed(model_seed(1, 0))
    ref.reset_parameters()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(4):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(Xt), yt).backward()
        opt.step()
    assert torch.allclose(stack.params["weight"][0], ref.weight, atol=1e-5)


def test_seeded_and_learns():
    X, y = _data(n=200)
    members = members_from_groups(np.arange(200) % 5, 5)
    cfg = TrainConfig(epochs=15, lr=0.05, batch_size=8, seed=0)
    a = train_many(_linear, X, y, members, config=cfg)
    b = train_many(_linear, X, y, members, config=cfg)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    c = train_many(_linear, X, y, members, config=TrainConfig(epochs=15, lr=0.05, batch_size=8, seed=1))
    assert not torch.equal(a.params["weight"], c.params["weight"])
    acc = (a.votes(X) == y[None, :]).mean(axis=1)
    assert (acc > 0.9).all(), acc


def test_vote_statistics_are_consistent():
    X, y = _data(n=60)
    stack = train_many(_mlp, X, y, members_from_groups(np.arange(60) % 6, 6), config=CFG, models_per_chunk=4)
    counts, pairwise = stack.vote_statistics(X)
    assert np.array_equal(counts, stack.vote_counts(X))
    assert (counts.sum(1) == 6).all()
    assert (pairwise + pairwise.transpose(0, 2, 1) == 6 * (1 - np.eye(2, dtype=int))).all()
    votes = stack.votes(X)
    assert np.array_equal(np.stack([(votes == c).sum(0) for c in range(2)], 1), counts)
    m2 = stack.module(2)
    with torch.no_grad():
        assert np.array_equal(m2(torch.as_tensor(X)).argmax(1).numpy(), votes[2])


def test_members_from_groups():
    out = members_from_groups([2, 0, 2, -1, 1], 3)
    assert [m.tolist() for m in out] == [[1], [4], [0, 2]]
    with pytest.raises(DataError, match="groups must be in"):
        members_from_groups([3], 3)


def test_refuses_random_and_batch_statistic_layers_and_patience():
    X, y = _data()
    with pytest.raises(InvalidParameterError, match="random layers.*Dropout"):
        train_many(lambda s: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2)), X, y, [np.arange(9)])
    with pytest.raises(InvalidParameterError, match="batch statistics.*BatchNorm1d"):
        train_many(lambda s: nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)), X, y, [np.arange(9)])
    with pytest.raises(InvalidParameterError, match="patience"):
        train_many(_linear, X, y, [np.arange(9)], config=TrainConfig(patience=2))
    with pytest.raises(DataError, match=r"members\[0\] has row indices outside"):
        train_many(_linear, X, y, [np.array([95])])


def test_gabor_features_are_fixed():
    f1, f2 = GaborFeatures(), GaborFeatures()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(f1(x), f2(x)) and f1(x).shape == (3, 512)
    assert not any(p.requires_grad for p in f1.parameters())


class _LinearChainModule(nn.Module):
    """Linear -> ReLU -> Linear as a custom module: outside the fast path (trained through vmap)."""

    def __init__(self, d, h, c):
        super().__init__()
        self.first = nn.Linear(d, h)
        self.second = nn.Linear(h, c)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def _params_in_order(stack):
    return [stack.params[n] for n in stack.params]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_linear_fast_path_equals_the_generic_path(optimizer):
    # Sequential(Linear, ReLU, Linear) takes the batched-matmul path, the same layers in a custom
    # module take vmap: same initial draws, same batches, bit-identical weights
    X, y = _data(n=120, d=6)
    members = members_from_groups(np.arange(120) % 5, 5)
    members[1] = members[1][:7]                               # unequal sizes: prefixes, padding
    cfg = TrainConfig(epochs=6, lr=0.05, batch_size=4, seed=2, optimizer=optimizer, momentum=0.9,
                      weight_decay=0.01)
    fast = train_many(lambda s: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)), X, y, members,
                      config=cfg, models_per_chunk=3)
    generic = train_many(lambda s: _LinearChainModule(6, 8, 2), X, y, members, config=cfg, models_per_chunk=3)
    for a, b in zip(_params_in_order(fast), _params_in_order(generic), strict=True):
        assert torch.equal(a, b)
    again = train_many(lambda s: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)), X, y, members,
                       config=cfg, models_per_chunk=3)
    assert all(torch.equal(a, b) for a, b in zip(_params_in_order(fast), _params_in_order(again)))


def test_flat_adam_equals_adam_per_model(monkeypatch):
    # Linear(16, 4): 64 weights per model -> one fused-Adam call per run of equal step counts;
    # with the flat update switched off every model is updated on its own view
    from poisonlab.models import ensemble

    X, y = _data(n=150, d=16)
    y = np.arange(150) % 4
    members = [np.arange(m, 150, 6)[: 10 + 4 * m] for m in range(6)]   # sizes 10..25: step counts differ
    cfg = TrainConfig(epochs=5, lr=0.05, batch_size=4, seed=0, weight_decay=0.01)
    flat = train_many(lambda s: nn.Linear(16, 4), X, y, members, config=cfg)
    monkeypatch.setattr(ensemble, "_FLAT_ADAM_MULTIPLE", 10**9)
    per_model = train_many(lambda s: nn.Linear(16, 4), X, y, members, config=cfg)
    assert all(torch.equal(flat.params[n], per_model.params[n]) for n in flat.params)


def test_which_models_take_the_fast_path():
    from poisonlab.models import MLP
    from poisonlab.models.ensemble import _linear_chain

    f32 = torch.float32
    assert _linear_chain(nn.Linear(4, 2), 2, f32) is not None
    assert _linear_chain(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), 4, f32) is not None
    assert _linear_chain(nn.Linear(4, 2), 3, f32) is None                       # Linear on (B, T, d)
    assert _linear_chain(nn.Linear(4, 2), 2, torch.int64) is None
    assert _linear_chain(nn.Sequential(nn.Flatten(2), nn.Linear(4, 2)), 3, f32) is None
    assert _linear_chain(nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)), 2, f32) is None
    assert _linear_chain(MLP(4, 2, hidden=(8,)), 2, f32) is None
    frozen = nn.Linear(4, 2)
    frozen.bias.requires_grad_(False)
    assert _linear_chain(frozen, 2, f32) is None


def test_all_subsets_empty_leaves_the_initial_weights():
    X, y = _data()
    stack = train_many(_linear, X, y, [np.array([], int)] * 2, config=CFG)
    ref = nn.Linear(4, 2)
    torch.random.default_generator.manual_seed(model_seed(CFG.seed, 1))
    ref.reset_parameters()
    assert torch.equal(stack.params["weight"][1], ref.weight.detach())


@pytest.mark.parametrize("factory", [_linear, _mlp])
def test_the_chunking_does_not_change_any_weight(factory):
    # benchmarks and trainers pick models_per_chunk for speed only: the weights are bit-identical
    X, y = _data(n=120)
    members = members_from_groups(np.arange(120) % 12, 12)
    whole = train_many(factory, X, y, members, config=CFG, models_per_chunk=12)
    for chunk in (1, 5):
        parts = train_many(factory, X, y, members, config=CFG, models_per_chunk=chunk)
        for name in whole.params:
            assert torch.equal(whole.params[name], parts.params[name]), (name, chunk)


class _TwiceModule(nn.Module):
    """``Sequential(first, act, middle, act, last)`` written out, with ``middle`` applied twice
    when ``repeat``: the vmap path's reference for Sequentials that list one module twice."""

    def __init__(self, first, middle, last, repeat):
        super().__init__()
        self.first, self.middle, self.last, self.repeat = first, middle, last, repeat

    def forward(self, x):
        x = torch.relu(self.middle(torch.relu(self.first(x))))
        if self.repeat:
            x = torch.relu(self.middle(x))
        return self.last(x)


def test_a_sequential_listing_a_module_twice_trains_every_entry():
    # nn.Sequential runs an entry as often as it is listed (a shared activation is common); the
    # fast path must not drop the repeats (named_children lists a module once)
    X, y = _data(n=120, d=6)
    members = members_from_groups(np.arange(120) % 4, 4)
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=4, seed=1)

    def shared_activation(spec):
        act = nn.ReLU()
        return nn.Sequential(nn.Linear(6, 8), act, nn.Linear(8, 8), act, nn.Linear(8, 2))

    def shared_linear(spec):
        mid = nn.Linear(8, 8)
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), mid, nn.ReLU(), mid, nn.ReLU(), nn.Linear(8, 2))

    for factory, repeat in ((shared_activation, False), (shared_linear, True)):
        got = train_many(factory, X, y, members, config=cfg)
        ref = train_many(lambda s: _TwiceModule(nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 2), repeat),
                         X, y, members, config=cfg)
        assert [p.shape for p in got.params.values()] == [p.shape for p in ref.params.values()]
        for a, b in zip(got.params.values(), ref.params.values(), strict=True):
            assert torch.equal(a, b), factory.__name__


class _Doubled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 2)

    def forward(self, x):
        return 2 * self.lin(x)


def test_a_linear_layer_with_a_forward_hook_trains_with_its_hook():
    # hooks change what a layer computes: such models stay on the vmap path, which runs them
    X, y = _data(n=120, d=6)
    members = members_from_groups(np.arange(120) % 3, 3)
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=4, seed=1)

    def hooked(spec):
        lin = nn.Linear(6, 2)
        lin.register_forward_hook(lambda module, inputs, output: 2 * output)
        return lin

    got = train_many(hooked, X, y, members, config=cfg)
    ref = train_many(lambda s: _Doubled(), X, y, members, config=cfg)
    assert torch.equal(got.params["weight"], ref.params["lin.weight"])
    assert torch.equal(got.params["bias"], ref.params["lin.bias"])
