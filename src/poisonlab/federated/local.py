"""Clients' local training, all sampled clients of a round at once.

A round starts every client from the same global parameters. Here the trainable parameters of
the ``a`` clients of a round are one ``(a, n_params)`` float32 tensor; each step takes per-layer
views of it, runs one ``vmap``-ed ``torch.func.functional_call`` over the clients' own batches,
takes one gradient of the sum of the clients' mean losses (each client's block is the gradient
of its own loss) and applies the SGD step in place, one operation per layer for the whole stack.
The update a client sends is its row minus the global parameters: no per-client Python loop.

Cost: a round runs ``epochs * ceil(max_k n_k / B)`` steps of ``a x B`` batch slots (slots of
clients with no batch left are not computed: the stack is sorted by size and shrinks), so the
time is that of training one model on ``sum_k n_k`` samples in ``a``-times larger batches.

What a client computes depends on nothing but its own data, the seed, its id and the round
------------------------------------------------------------------------------------------
* Its sample order in epoch ``e`` of round ``r`` is its local positions ``0 .. n_k - 1`` sorted by
  a hash of ``(seed, client id, key, position)`` (:func:`poisonlab.models.ensemble.epoch_orders`,
  with ``key = (r - 1) * epochs + e``), so it does not depend on who else is in the round.
* It takes ``ceil(n_k / B)`` steps per epoch; the last batch is partial, and its missing slots
  carry weight 0 (the client minimises the mean loss over its real samples). Clients are sorted
  by size, largest first, so at step ``s`` the clients with a batch left are a prefix of the
  stack; the others are not touched at all (weights and momentum buffer).
* Layers with random draws (dropout) or batch statistics (BatchNorm) are refused: one stream or
  one padded batch would couple the stacked clients.

So a client trained alone gives the update it gives inside any stack, to float tolerance (tested
against a plain ``torch.optim.SGD`` loop).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..exceptions import DataError, InvalidParameterError
from ..models.ensemble import refuse_unstackable

#: Client id the server's own update (FLTrust's root data set) is keyed by.
SERVER_ID = 2**62


def check_stackable(module: nn.Module) -> None:
    """Refuse layers that would couple clients trained in one stack (dropout, BatchNorm)."""
    refuse_unstackable(module, "the federated simulation", "clients")


class FlatModel:
    """An architecture whose trainable parameters are handled as one flat float32 vector.

    Frozen parameters (``requires_grad=False``) and buffers are shared by every client and are
    not part of the vector (nor of the updates).

    Parameters
    ----------
    template : nn.Module
        The architecture; kept (the caller passes a copy), its trainable weights are only read by
        :meth:`flatten`.
    """

    def __init__(self, template: nn.Module) -> None:
        self.template = template.eval()
        self.names = [n for n, p in template.named_parameters() if p.requires_grad]
        if not self.names:
            raise InvalidParameterError("the model has no trainable parameter")
        params = dict(template.named_parameters())
        self.shapes = [tuple(params[n].shape) for n in self.names]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n_params = int(sum(self.sizes))
        self.shared = {**{n: p.detach() for n, p in template.named_parameters() if not p.requires_grad},
                       **{n: b for n, b in template.named_buffers()}}

    def flatten(self, module: nn.Module | None = None) -> torch.Tensor:
        """The trainable parameters of ``module`` (default: the template) as one float32 vector."""
        params = dict((module if module is not None else self.template).named_parameters())
        return torch.cat([params[n].detach().reshape(-1).to(torch.float32) for n in self.names])

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-layer views of a stack ``(a, n_params)`` -> ``{name: (a, *shape)}``."""
        out, o = {}, 0
        a = flat.shape[0]
        for n, shape, size in zip(self.names, self.shapes, self.sizes):
            out[n] = flat[:, o:o + size].view(a, *shape)
            o += size
        return out

    def module(self, flat: Any) -> nn.Module:
        """A copy of the template holding the parameters ``flat`` (n_params,)."""
        vec = torch.as_tensor(np.asarray(flat), dtype=torch.float32)
        if vec.shape != (self.n_params,):
            raise InvalidParameterError(f"flat parameters must have shape ({self.n_params},); got {tuple(vec.shape)}")
        m = copy.deepcopy(self.template)
        params = dict(m.named_parameters())
        with torch.no_grad():
            for n, v in self.views(vec[None]).items():
                params[n].copy_(v[0].to(params[n].dtype))
        return m.eval()

    @torch.no_grad()
    def predict(self, flat: torch.Tensor, X: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
        """Predicted classes of the model ``flat`` on ``X`` (argmax of the logits), batched."""
        from torch.func import functional_call

        params = {n: v[0] for n, v in self.views(flat[None]).items()}
        out = []
        for i in range(0, len(X), batch_size):
            out.append(functional_call(self.template, (params, self.shared), (X[i:i + batch_size],)).argmax(-1))
        return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _splitmix64_inplace(z: np.ndarray) -> np.ndarray:
    """:func:`_splitmix64` of a uint64 array, computed in ``z`` itself (the same operations, with
    one scratch array instead of a temporary per operation); returns ``z``."""
    t = np.empty_like(z)
    z += np.uint64(0x9E3779B97F4A7C15)
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        np.right_shift(z, np.uint64(shift), out=t)
        z ^= t
        z *= np.uint64(mult)
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t
    return z


def client_orders(sizes: np.ndarray, ids: np.ndarray, seed: int, key: int, width: int,
                  first: int | None = None) -> np.ndarray:
    """Each client's sample order (local positions, -1 padding) for one epoch: ``(a, width)``.

    Row ``j`` is ``0 .. sizes[j] - 1`` sorted by a hash of ``(seed, ids[j], key, position)``
    (SplitMix64, as :func:`poisonlab.models.ensemble.epoch_orders`), padding last; a client's
    order depends on its size, its id, the seed and the key alone. ``first``: only the first
    ``first`` columns are wanted (a partial sort; the same columns as the full order).

    >>> o = client_orders(np.array([3, 2]), np.array([5, 7]), 0, 0, 4)
    >>> sorted(o[0][:3].tolist()), o[1][2:].tolist()
    ([0, 1, 2], [-1, -1])
    >>> np.array_equal(client_orders(np.array([2]), np.array([7]), 0, 0, 4), o[1:])
    True
    >>> np.array_equal(client_orders(np.array([3, 2]), np.array([5, 7]), 0, 0, 4, first=2), o[:, :2])
    True
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    pos = np.arange(width, dtype=np.int64)
    base = _splitmix64(_splitmix64(_splitmix64(np.uint64(int(seed) & (2**64 - 1)))
                                   ^ np.asarray(ids, dtype=np.int64).astype(np.uint64))[:, None]
                       ^ np.uint64(int(key) & (2**64 - 1)))
    keys = _splitmix64_inplace(base ^ pos.astype(np.uint64)[None, :])   # one (a, width) array
    padding = pos[None, :] >= sizes[:, None] if len(sizes) and sizes.min() < width else None
    if padding is not None:
        keys[padding] = np.iinfo(np.uint64).max        # padding last
    if first is not None and first < width:
        part = np.argpartition(keys, first - 1, axis=1)[:, :first]
        order = np.take_along_axis(part, np.argsort(np.take_along_axis(keys, part, axis=1), axis=1,
                                                    kind="stable"), axis=1)
    else:
        order = np.argsort(keys, axis=1, kind="stable")
    # a sorted column is a local position; padding positions read -1
    return order if padding is None else np.where(order < sizes[:, None], order, -1)


def _batch_rows(members: Sequence[np.ndarray], order: np.ndarray, n_cols: int) -> np.ndarray:
    """Global rows of the clients' sorted slots: ``members[j][order[j, c]]``, -1 where ``order``
    is -1 (padding) and in the columns beyond ``order``'s, up to ``n_cols``."""
    lens = np.array([len(m) for m in members], dtype=np.int64)
    if not lens.all():
        raise DataError(f"client {int(np.flatnonzero(lens == 0)[0])} has no samples: every client "
                        "taking a step needs at least one")
    starts = np.cumsum(lens) - lens                 # client j's first entry in the concatenation
    glob = np.full((len(members), max(n_cols, order.shape[1])), -1, dtype=np.int64)
    cols = glob[:, :order.shape[1]]
    cols[...] = np.concatenate(members)[starts[:, None] + np.maximum(order, 0)]
    cols[order < 0] = -1
    return glob


def _stack_gradients(model: FlatModel, fwd: Any, flat: torch.Tensor, X2: torch.Tensor,
                     x_shape: tuple, y: torch.Tensor, idx: torch.Tensor) -> tuple[dict, tuple]:
    """One step's gradients of the stack ``flat`` (a, n_params) on the batches ``idx`` (a, B) of
    global rows (-1: an empty slot, weight 0): each client's block is the gradient of its own
    mean loss over its real slots. Returns the per-layer views of ``flat`` and the gradients."""
    a, B = idx.shape
    w = (idx >= 0)
    flat_idx = idx.clamp(min=0).reshape(-1)
    xb = X2.index_select(0, flat_idx).view(a, B, *x_shape)
    yb = y.index_select(0, flat_idx).view(a, B)
    # per-layer leaves sharing the stack's storage: the gradient comes per layer, with no
    # zero-filled (a, n_params) buffer per slice
    views = model.views(flat)
    leaves = {n: v.detach().requires_grad_(True) for n, v in views.items()}
    losses = nn.functional.cross_entropy(fwd(leaves, xb).reshape(a * B, -1), yb.reshape(-1),
                                         reduction="none").reshape(a, B)
    wf = w.to(losses.dtype)
    per_client = (losses * wf).sum(1) / wf.sum(1)   # each client's mean over its real slots
    return views, torch.autograd.grad(per_client.sum(), list(leaves.values()))


def _check_out(out: Any, shape: tuple[int, int]) -> torch.Tensor:
    """``out`` as a float32 or float64 tensor of ``shape`` (a numpy array is wrapped, not copied)."""
    t = torch.from_numpy(out) if isinstance(out, np.ndarray) else out
    if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or \
            t.dtype not in (torch.float32, torch.float64):
        got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(out).__name__
        raise InvalidParameterError(f"out must be a float32 or float64 tensor or array of shape {shape} "
                                    f"(a narrower type would round the updates); got {got}")
    return t


def local_updates(model: FlatModel, global_flat: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                  members: Sequence[np.ndarray], ids: Sequence[int], *, mode: str, epochs: int,
                  batch_size: int, lr: float, momentum: float, seed: int, round: int,
                  momentum_buffers: torch.Tensor | None = None, out: Any = None) -> torch.Tensor:
    """The updates of clients ``ids`` training from ``global_flat`` on ``X[members[j]]``.

    Parameters
    ----------
    model : FlatModel
    global_flat : Tensor of shape (n_params,)
        The global model the round starts from.
    X, y : Tensor
        All clients' data, concatenated; ``members[j]`` are client ``ids[j]``'s rows.
    members : sequence of int arrays
        Non-empty row sets, one per client.
    ids : sequence of int
        The clients' ids (they key the batch orders).
    mode : {"fedavg", "fedsgd"}
        "fedavg": ``epochs`` epochs of minibatch SGD (``ceil(n_k / batch_size)`` steps each),
        update = local parameters - global parameters. "fedsgd": one gradient on a minibatch of
        ``min(batch_size, n_k)`` distinct samples, update = ``-lr * g`` (with ``momentum``:
        ``-lr * m``, ``m = momentum * m_prev + g`` from ``momentum_buffers``, which is updated).
    epochs, batch_size, lr, momentum
        Local SGD as ``torch.optim.SGD(lr=lr, momentum=momentum)``; in "fedavg" the momentum
        buffer starts at zero every round.
    seed, round : int
        Key the batch orders (with the client ids).
    momentum_buffers : Tensor of shape (len(ids), n_params), optional
        "fedsgd" with momentum: the clients' buffers, updated in place.
    out : Tensor or ndarray of shape (len(ids), n_params), optional
        Where to write the updates (float32 or float64; a float64 ``out`` holds the float32
        updates exactly, so the caller needs no separate conversion).

    Returns
    -------
    Tensor of shape (len(ids), n_params), rows in the order of ``ids``: float32; with ``out``,
    ``out`` itself (a numpy ``out`` as a tensor sharing its memory).
    """
    from torch.func import functional_call, vmap

    a_all = len(ids)
    target = None if out is None else _check_out(out, (a_all, model.n_params))
    sizes_in = np.array([len(m) for m in members], dtype=np.int64)
    # largest first: the clients with a batch left at step s are a prefix (views, no copies);
    # in "fedsgd" every client takes its one step, so no order is needed
    fedsgd = mode == "fedsgd"
    rank = np.arange(a_all) if fedsgd else np.argsort(-sizes_in, kind="stable")
    identity = bool(np.array_equal(rank, np.arange(a_all)))
    sizes = sizes_in[rank]
    ids_r = np.asarray(ids, dtype=np.int64)[rank]
    members_r = [np.asarray(members[j], dtype=np.int64) for j in rank]
    B = int(batch_size)
    lr = float(lr)
    base = model.template
    shared = model.shared

    def one(p, x):
        return functional_call(base, (p, shared), (x,))

    # autograd over a vmapped forward; (vmap(grad(...)) would give the weight gradients in the
    # parameters' own layout, a little faster per step, but torch.func.grad imports torch._dynamo
    # on first use: seconds per process)
    fwd = vmap(one, in_dims=(0, 0), randomness="error")
    X2 = X.reshape(len(X), -1)                  # rows gathered with index_select (a memcpy each)
    g32 = global_flat.detach().to(torch.float32)
    if fedsgd:
        # every client's one gradient is taken at the global parameters: a stride-0 stack (no
        # copy); the updates -lr * step are written to `out` (the caller's, or a new one)
        flat = g32.expand(a_all, -1)
        out = target if target is not None else torch.empty(a_all, model.n_params)
        n_epochs = 1
        used = np.minimum(sizes, B)
    else:
        flat = g32.expand(a_all, -1).clone()
        n_epochs = int(epochs)
        used = sizes
    width = int(sizes.max())
    steps = 1 if fedsgd else math.ceil(width / B)
    buf = None
    if momentum:
        if fedsgd and momentum_buffers is not None:
            buf = momentum_buffers                          # updated in place (rank is identity)
        else:
            buf = torch.zeros(a_all, model.n_params)
    for e in range(n_epochs):
        key = (int(round) - 1) * n_epochs + e
        order = client_orders(sizes, ids_r, seed, key, width, first=B if fedsgd else None)
        glob_t = torch.from_numpy(_batch_rows(members_r, order, steps * B))
        for s in range(steps):
            a = int((used > s * B).sum())           # clients with a batch left: a prefix
            views, grads = _stack_gradients(model, fwd, flat[:a], X2, X.shape[1:], y,
                                            glob_t[:a, s * B:(s + 1) * B])
            with torch.no_grad():
                bufs = model.views(buf[:a]) if buf is not None else None
                outs = model.views(out[:a]) if fedsgd else None
                for (n, v), g in zip(views.items(), grads):
                    if bufs is not None:
                        g = bufs[n].mul_(momentum).add_(g)
                    if fedsgd:
                        # one step: the update is exactly -lr * step, rounded to float32 (in
                        # place on the fresh gradient, in its own memory order), then written out
                        outs[n].copy_(g.mul(-lr) if bufs is not None else g.mul_(-lr))
                    else:
                        v.add_(g, alpha=-lr)
    if fedsgd:
        return out
    upd = flat.sub_(g32)
    if not identity:
        upd = upd[torch.from_numpy(np.argsort(rank))]
    return upd if target is None else target.copy_(upd)


__all__ = ["FlatModel", "SERVER_ID", "check_stackable", "client_orders", "local_updates"]
