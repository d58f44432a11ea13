"""Clients trained together in one vmapped stack equal clients trained one by one.

The reference is a plain loop: an ``nn.Module``, ``backward()``, SGD with momentum and the
client's own batch order -- what a real federated client would run.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from poisonlab.federated.local import FlatModel, client_orders, local_updates
from poisonlab.exceptions import InvalidParameterError
from poisonlab.federated.local import check_stackable
from poisonlab.models import MLP

SIZES = [7, 13, 20, 3, 16]              # unequal clients: masked steps and padded batches
IDS = [4, 0, 9, 2, 7]


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    n = sum(SIZES)
    X = torch.as_tensor(rng.normal(size=(n, 5)).astype(np.float32))
    y = torch.as_tensor(rng.integers(0, 3, size=n))
    bounds = np.concatenate([[0], np.cumsum(SIZES)])
    members = [np.arange(bounds[j], bounds[j + 1]) for j in range(len(SIZES))]
    torch.manual_seed(1)
    fm = FlatModel(MLP(5, 3, hidden=(6,)))
    return fm, fm.flatten(), X, y, members


def _sequential(fm, global_flat, X, y, rows, cid, *, epochs, B, lr, momentum, seed, rnd):
    """One client alone: an ordinary module, loss.backward() and torch.optim.SGD's update rule
    (dampening 0, no Nesterov: ``buf = momentum * buf + g``, ``p -= lr * buf``), written out
    because the first ``torch.optim`` step imports torch._dynamo (seconds)."""
    module = fm.module(global_flat).train()
    params = list(module.parameters())
    bufs = [torch.zeros_like(p) for p in params]
    n = len(rows)
    for e in range(epochs):
        order = client_orders(np.array([n]), np.array([cid]), seed, (rnd - 1) * epochs + e, n)[0]
        for s in range(math.ceil(n / B)):
            idx = torch.as_tensor(rows[order[s * B:(s + 1) * B]])
            module.zero_grad()
            nn.functional.cross_entropy(module(X[idx]), y[idx]).backward()
            with torch.no_grad():
                for p, buf in zip(params, bufs):
                    buf.mul_(momentum).add_(p.grad)
                    p.sub_(lr * buf)
    return fm.flatten(module) - global_flat


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_stacked_clients_equal_sequential_torch_sgd(momentum):
    fm, g, X, y, members = _setup()
    kw = dict(epochs=2, lr=0.1, momentum=momentum, seed=123)
    upd = local_updates(fm, g, X, y, members, IDS, mode="fedavg", batch_size=4, round=3, **kw)
    assert upd.shape == (len(SIZES), fm.n_params)
    for j, cid in enumerate(IDS):
        ref = _sequential(fm, g, X, y, members[j], cid, epochs=2, B=4, lr=0.1, momentum=momentum,
                          seed=123, rnd=3)
        torch.testing.assert_close(upd[j], ref, rtol=1e-5, atol=1e-6)


def test_a_client_alone_sends_the_update_it_sends_inside_the_stack():
    fm, g, X, y, members = _setup()
    kw = dict(mode="fedavg", epochs=3, batch_size=5, lr=0.2, momentum=0.5, seed=7, round=2)
    together = local_updates(fm, g, X, y, members, IDS, **kw)
    for j in range(len(IDS)):
        alone = local_updates(fm, g, X, y, [members[j]], [IDS[j]], **kw)
        torch.testing.assert_close(together[j], alone[0], rtol=1e-5, atol=1e-6)
    # and the order of clients in the stack does not matter
    rev = local_updates(fm, g, X, y, members[::-1], IDS[::-1], **kw)
    torch.testing.assert_close(rev.flip(0), together, rtol=1e-5, atol=1e-6)


def test_batch_orders_depend_on_the_round_and_the_client_id():
    a = client_orders(np.array([10]), np.array([0]), 0, 0, 10)
    assert not np.array_equal(a, client_orders(np.array([10]), np.array([1]), 0, 0, 10))
    assert not np.array_equal(a, client_orders(np.array([10]), np.array([0]), 0, 1, 10))
    assert sorted(a[0].tolist()) == list(range(10))


def test_fedsgd_update_is_minus_lr_times_one_minibatch_gradient():
    fm, g, X, y, members = _setup()
    B, lr = 8, 0.05
    upd = local_updates(fm, g, X, y, members, IDS, mode="fedsgd", epochs=1, batch_size=B, lr=lr,
                        momentum=0.0, seed=3, round=5)
    for j, cid in enumerate(IDS):
        n = len(members[j])
        order = client_orders(np.array([n]), np.array([cid]), 3, 4, n)[0][:min(B, n)]
        idx = torch.as_tensor(members[j][order])
        module = fm.module(g)
        nn.functional.cross_entropy(module(X[idx]), y[idx]).backward()
        ref = -lr * torch.cat([p.grad.reshape(-1) for p in module.parameters()])
        torch.testing.assert_close(upd[j], ref, rtol=1e-5, atol=1e-7)


def test_fedsgd_worker_momentum_carries_across_rounds():
    fm, g, X, y, members = _setup()
    kw = dict(mode="fedsgd", epochs=1, batch_size=4, lr=0.1, seed=0)
    g1 = local_updates(fm, g, X, y, members, IDS, momentum=0.0, round=1, **kw) / -0.1
    g2 = local_updates(fm, g, X, y, members, IDS, momentum=0.0, round=2, **kw) / -0.1
    bufs = torch.zeros(len(IDS), fm.n_params)
    local_updates(fm, g, X, y, members, IDS, momentum=0.9, round=1, momentum_buffers=bufs, **kw)
    u2 = local_updates(fm, g, X, y, members, IDS, momentum=0.9, round=2, momentum_buffers=bufs, **kw)
    torch.testing.assert_close(u2, -0.1 * (0.9 * g1 + g2), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bufs, 0.9 * g1 + g2, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["fedavg", "fedsgd"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_updates_written_into_a_float64_out_are_the_float32_updates_exactly(mode, momentum):
    # the simulator's fast path: the updates go straight into the float64 array the aggregator
    # reads; they must be the float32 updates, widened (bit for bit), momentum buffers included
    fm, g, X, y, members = _setup()
    kw = dict(mode=mode, epochs=2, batch_size=4, lr=0.1, momentum=momentum, seed=5, round=2)
    bufs32, bufs64 = torch.ones(len(IDS), fm.n_params), torch.ones(len(IDS), fm.n_params)
    ref = local_updates(fm, g, X, y, members, IDS, momentum_buffers=bufs32, **kw)
    out = np.full((len(IDS), fm.n_params), np.nan)
    got = local_updates(fm, g, X, y, members, IDS, momentum_buffers=bufs64, out=out, **kw)
    assert ref.dtype == torch.float32 and np.shares_memory(got.numpy(), out)
    np.testing.assert_array_equal(out, ref.double().numpy())
    assert torch.equal(bufs32, bufs64)
    with pytest.raises(InvalidParameterError, match="out must be"):
        local_updates(fm, g, X, y, members, IDS, out=np.zeros((2, fm.n_params)), **kw)


def test_client_orders_pad_unequal_clients_after_their_own_positions():
    sizes, ids = np.array([5, 2, 4]), np.array([3, 1, 7])
    full = client_orders(sizes, ids, 9, 1, 6)
    for j, n in enumerate(sizes):
        assert sorted(full[j][:n].tolist()) == list(range(n)) and (full[j][n:] == -1).all()
    np.testing.assert_array_equal(client_orders(sizes, ids, 9, 1, 6, first=3), full[:, :3])
    # a client's order does not depend on the stack's width (the padding)
    np.testing.assert_array_equal(client_orders(sizes[:1], ids[:1], 9, 1, 5), full[:1, :5])


def test_flat_model_round_trips_parameters():
    fm, g, *_ = _setup()
    m = fm.module(g + 1.0)
    torch.testing.assert_close(fm.flatten(m), g + 1.0)
    with pytest.raises(InvalidParameterError, match="shape"):
        fm.module(np.zeros(3))


def test_models_that_would_couple_stacked_clients_are_refused():
    with pytest.raises(InvalidParameterError, match="random layers"):
        check_stackable(MLP(4, 2, hidden=(4,), dropout=0.5))
    with pytest.raises(InvalidParameterError, match="batch statistics"):
        check_stackable(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))


def test_client_orders_are_the_ensembles_epoch_orders():
    from poisonlab.models.ensemble import epoch_orders

    sizes, ids = np.array([6, 3, 5]), np.array([2, 8, 1])
    rows = np.where(np.arange(6)[None, :] < sizes[:, None], np.arange(6)[None, :], -1)
    np.testing.assert_array_equal(client_orders(sizes, ids, 42, 3, 6), epoch_orders(rows, ids, 42, 3))
    np.testing.assert_array_equal(client_orders(sizes, ids, 42, 3, 6, first=4), epoch_orders(rows, ids, 42, 3)[:, :4])
