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
