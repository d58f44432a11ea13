"""Many small models trained at once: stacked parameters, ``torch.func.functional_call`` + ``vmap``.

Partition ensembles (Deep Partition Aggregation: k = 1200 base models on MNIST), subset-ensemble
detectors and federated simulations train many copies of one small architecture, each on its own
subset of the data. Training them one after the other pays Python and kernel-launch overhead
1200 times; here the parameters of ``M`` copies are stacked along a leading axis and one
``vmap``-ed forward/backward pass trains all of them on their own batches (a convolution becomes
a grouped convolution, a linear layer a batched matrix product). Chains of linear layers
(``nn.Linear``, or an ``nn.Sequential`` of ``Linear``/``Flatten``/``ReLU``/``Identity``) skip
``vmap`` and call the same batched matrix products directly. Every step gathers its batches into
one reused buffer and updates the stack with one fused-Adam call over flat views where the kernel
allows it (the same weights as the ``vmap`` path and as the earlier per-model update, bit for
bit in the tests with MKL; see :class:`_StackedLinear`).

What each model sees depends on nothing but its own data
-------------------------------------------------------
Certified defenses need model ``m`` to be a deterministic function of its own subset (and the
seed) alone: inserting a sample into subset ``j`` must leave every other model unchanged. So

* model ``m``'s initial weights come from the seed ``(seed, m)`` only;
* its epoch order is drawn from its own generator ``(seed, m)``, it takes ``ceil(n_m / B)`` steps
  per epoch over its own ``n_m`` samples, and on steps where it has no batch left its weights
  *and optimizer state* are left untouched (a masked Adam/SGD written here: a zero gradient fed
  to ``torch.optim.Adam`` would still move a model through its momentum);
* padded batch slots carry weight 0, and random layers (dropout) are refused: their draws would
  come from one stream shared by the whole stack. Layers with batch statistics (BatchNorm) are
  refused as well: padding would enter their statistics.

The stack's shape (models per chunk x batch size) is fixed by the parameters, never by the data,
so the same kernels run whatever the other subsets hold (tested: changing one subset leaves the
other models' weights unchanged).

Examples
--------
>>> import numpy as np
>>> from poisonlab.models import MLP, TrainConfig
>>> from poisonlab.models.ensemble import train_many
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(60, 4)).astype("float32"); y = (X[:, 0] > 0).astype(int)
>>> members = [np.arange(m, 60, 3) for m in range(3)]          # three disjoint subsets
>>> stack = train_many(lambda spec: MLP(4, 2, hidden=(8,)), X, y, members,
...                    config=TrainConfig(epochs=20, lr=0.05, batch_size=8))
>>> stack.n_models, stack.vote_counts(X).shape
(3, (60, 2))
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .._validation import check_array, check_labels
from ..exceptions import DataError, InvalidParameterError
from .architectures import ModelSpec
from .training import TrainConfig, reset_parameters, to_tensor

#: ``callback(event, info)``: "chunk" after each chunk of models is trained (info: models_done,
#: n_models, seconds).
EnsembleCallback = Callable[[str, dict], None]


def model_seed(seed: int, index: int) -> int:
    """The seed of model ``index`` of a stack trained with ``seed``: a function of both alone.

    >>> model_seed(0, 3) == model_seed(0, 3) != model_seed(0, 4)
    True
    """
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] >> 1)


def members_from_groups(groups: Any, n_models: int) -> list[np.ndarray]:
    """Index arrays, one per model, from a group id per sample (-1: used by no model).

    >>> [m.tolist() for m in members_from_groups([1, 0, 1, -1], 2)]
    [[1], [0, 2]]
    """
    g = np.asarray(groups, dtype=np.int64)
    if g.ndim != 1:
        raise DataError(f"groups must be 1-D; got shape {g.shape}")
    if g.size and (g.max() >= n_models or g.min() < -1):
        raise DataError(f"groups must be in [-1, {n_models}); got values in [{g.min()}, {g.max()}]")
    order = np.argsort(g, kind="stable")
    bounds = np.searchsorted(g[order], np.arange(n_models + 1))
    return [order[bounds[m]:bounds[m + 1]] for m in range(n_models)]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def epoch_orders(rows: np.ndarray, model_ids: np.ndarray, seed: int, epoch: int,
                 sample_keys: np.ndarray | None = None) -> np.ndarray:
    """Each model's sample order for ``epoch``: row ``j`` of ``rows`` (sample ids, -1 padding at
    the end) sorted by a hash of ``(seed, model_ids[j], epoch, key)``, where a sample's key is
    its id, or ``sample_keys[id]`` when given (a content hash: the order then depends on what the
    model's samples *are*, not on where they sit in the training set, so inserting a sample
    elsewhere leaves the order unchanged). A model's order is a function of its own samples, its
    id, the seed and the epoch alone (no shared random stream).

    >>> rows = np.array([[3, 5, 9, -1], [4, 6, 8, 10]])
    >>> out = epoch_orders(rows, np.array([0, 1]), 0, 0)
    >>> sorted(out[0][:3].tolist()), int(out[0][3]), sorted(out[1].tolist())
    ([3, 5, 9], -1, [4, 6, 8, 10])
    >>> np.array_equal(epoch_orders(rows[:1], np.array([0]), 0, 0), out[:1])
    True
    """
    base = _splitmix64(_splitmix64(_splitmix64(np.uint64(int(seed) & (2**64 - 1)))
                                   ^ model_ids.astype(np.uint64))[:, None] ^ np.uint64(epoch))
    ids = rows.astype(np.uint64) if sample_keys is None else \
        np.asarray(sample_keys, dtype=np.uint64)[np.maximum(rows, 0)]
    keys = _splitmix64(base ^ ids)
    keys[rows < 0] = np.iinfo(np.uint64).max           # padding last
    pos = np.argsort(keys, axis=1, kind="stable")
    return np.take_along_axis(rows, pos, axis=1)


def _lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The learning-rate multiplier of ``epoch`` (as :mod:`poisonlab.models.training`'s schedulers)."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        milestones = sorted({max(1, epochs // 2), max(1, 3 * epochs // 4)})
        return 0.1 ** sum(epoch >= m for m in milestones)
    return 1.0


def refuse_unstackable(module: nn.Module, who: str = "train_many", what: str = "models") -> None:
    """Refuse layers that would couple copies trained in one stack: batch statistics (padded
    batch slots would enter them) and active dropout (one random stream for the whole stack).
    ``who`` and ``what`` name the caller and what it stacks in the message."""
    for name, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            raise InvalidParameterError(
                f"{who} cannot train a model with batch statistics ({name or 'model'}: "
                f"{type(sub).__name__}): padded batch slots would enter them; use GroupNorm or LayerNorm")
        if isinstance(sub, nn.modules.dropout._DropoutNd) and sub.p > 0:
            raise InvalidParameterError(
                f"{who} cannot train a model with random layers ({name}: {type(sub).__name__}, "
                f"p={sub.p}): their draws would couple the stacked {what}; set the dropout to 0")


def _build(model_factory: Any, spec: ModelSpec) -> nn.Module:
    if isinstance(model_factory, nn.Module):
        return copy.deepcopy(model_factory)
    if not callable(model_factory):
        raise InvalidParameterError(f"model_factory must be an nn.Module or a callable ModelSpec -> "
                                    f"nn.Module; got {type(model_factory).__name__}")
    module = model_factory(spec)
    if not isinstance(module, nn.Module):
        raise InvalidParameterError(f"model_factory must return an nn.Module; got {type(module).__name__}")
    return module


@dataclass
class ModelStack:
    """``n_models`` copies of one architecture with their own weights, queried together.

    Attributes
    ----------
    template : nn.Module
        The architecture (its own weights are unused; never the user's object).
    params, buffers : dict of str -> Tensor
        Stacked weights, leading axis = model.
    n_classes : int
    models_per_chunk : int
        How many models one vmapped call evaluates.
    """

    template: nn.Module
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    n_classes: int
    models_per_chunk: int = 200

    @property
    def n_models(self) -> int:
        return int(next(iter(self.params.values())).shape[0])

    def module(self, index: int) -> nn.Module:
        """Model ``index`` as an ordinary module (a copy)."""
        m = copy.deepcopy(self.template)
        m.load_state_dict({**{k: v[index] for k, v in self.params.items()},
                           **{k: v[index] for k, v in self.buffers.items()}})
        return m.eval()

    @torch.no_grad()
    def logits(self, X: Any, *, batch_size: int = 1024) -> Iterator[tuple[int, int, int, int, torch.Tensor]]:
        """Yield ``(m0, m1, i0, i1, logits)`` with logits of models ``m0:m1`` on inputs ``i0:i1``,
        shape ``(m1 - m0, i1 - i0, n_classes)``."""
        from torch.func import functional_call, vmap

        Xa = np.asarray(X)
        Xt = to_tensor(Xa if Xa.flags.writeable else Xa.copy())
        base = self.template.eval()

        def one(p, b, x):
            return functional_call(base, (p, b), (x,))

        f = vmap(one, in_dims=(0, 0, None))
        for m0 in range(0, self.n_models, self.models_per_chunk):
            m1 = min(self.n_models, m0 + self.models_per_chunk)
            p = {k: v[m0:m1] for k, v in self.params.items()}
            b = {k: v[m0:m1] for k, v in self.buffers.items()}
            for i0 in range(0, len(Xt), batch_size):
                i1 = min(len(Xt), i0 + batch_size)
                yield m0, m1, i0, i1, f(p, b, Xt[i0:i1])

    def votes(self, X: Any) -> np.ndarray:
        """Each model's predicted class (argmax; ties to the smaller label), ``(n_models, n)``."""
        out = np.empty((self.n_models, len(X)), dtype=np.int64)
        for m0, m1, i0, i1, lg in self.logits(X):
            out[m0:m1, i0:i1] = lg.argmax(-1).numpy()
        return out

    def vote_counts(self, X: Any) -> np.ndarray:
        """How many models vote for each class, ``(n, n_classes)`` int64."""
        counts = torch.zeros(len(X), self.n_classes, dtype=torch.int64)
        for _, _, i0, i1, lg in self.logits(X):
            counts[i0:i1] += nn.functional.one_hot(lg.argmax(-1), self.n_classes).sum(0)
        return counts.numpy()

    def vote_statistics(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, pairwise)``: the vote counts ``(n, C)`` and ``pairwise[i, a, b]``, how many
        models rank class ``a`` above class ``b`` on input ``i`` (logit of ``a`` larger, or equal
        and ``a < b``), ``(n, C, C)`` -- what Run-off Election's second round reads."""
        C = self.n_classes
        counts = torch.zeros(len(X), C, dtype=torch.int64)
        pairwise = torch.zeros(len(X), C, C, dtype=torch.int64)
        lower = torch.triu(torch.ones(C, C, dtype=torch.bool), diagonal=1)   # a < b
        for _, _, i0, i1, lg in self.logits(X, batch_size=256):
            counts[i0:i1] += nn.functional.one_hot(lg.argmax(-1), C).sum(0)
            a, b = lg.unsqueeze(-1), lg.unsqueeze(-2)
            pairwise[i0:i1] += ((a > b) | ((a == b) & lower)).sum(0)
        return counts.numpy(), pairwise.numpy()


def _stack_initial_weights(template: nn.Module, seed: int, m0: int,
                           m1: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The initial parameters and buffers of models ``m0 .. m1 - 1``, stacked along a leading axis:
    model ``m`` draws from the seed ``model_seed(seed, m)`` alone.

    Only the CPU generator is seeded (``torch.manual_seed`` would also queue a lazy seed per
    accelerator backend, per model); the caller restores it (``torch.random.fork_rng``).
    """
    init = copy.deepcopy(template)
    draws: dict[str, list[torch.Tensor]] = {n: [] for n, _ in template.named_parameters()}
    bufs: dict[str, list[torch.Tensor]] = {n: [] for n, _ in template.named_buffers()}
    for m in range(m0, m1):
        torch.random.default_generator.manual_seed(model_seed(seed, m))
        reset_parameters(init)
        for n, p in init.named_parameters():
            draws[n].append(p.detach().clone())
        for n, b in init.named_buffers():
            bufs[n].append(b.clone())
    return {n: torch.stack(v) for n, v in draws.items()}, {n: torch.stack(v) for n, v in bufs.items()}


def _epoch_slots(rows: np.ndarray, model_ids: np.ndarray, seed: int, epoch: int,
                 sample_keys: np.ndarray | None, batch_size: int, n_steps: int) -> torch.Tensor:
    """The sample in every batch slot of ``epoch``: ``(n_steps, n_models, batch_size)`` int64, -1
    for padding; step ``s`` of model ``j`` takes entries ``s * batch_size ...`` of its
    :func:`epoch_orders` row. Laid out step-major, so a step's slots are one contiguous block.

    >>> rows = np.array([[3, 5, 9, -1, -1], [4, 6, 8, 10, 11]])
    >>> slots = _epoch_slots(rows, np.array([0, 1]), 0, 0, None, 2, 3)
    >>> tuple(slots.shape), slots[2].tolist()[0], sorted(slots[:, 1].flatten().tolist())
    ((3, 2, 2), [-1, -1], [-1, 4, 6, 8, 10, 11])
    """
    order = epoch_orders(rows, model_ids, seed, epoch, sample_keys)
    pad = n_steps * batch_size - order.shape[1]
    if pad:
        order = np.pad(order, ((0, 0), (0, pad)), constant_values=-1)
    steps = order.reshape(len(order), n_steps, batch_size).transpose(1, 0, 2)
    return torch.from_numpy(np.ascontiguousarray(steps))


class _BatchGather:
    """Gathers the inputs and labels of a step's batch slots into one reused buffer.

    A fresh ``(models x batch, ...)`` tensor per step costs page faults and zeroing on every
    allocation; ``index_select`` into a buffer sized once for the chunk does not.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, n_models: int, batch_size: int) -> None:
        self.X, self.y = X, y
        self.buffer = X.new_empty((n_models * batch_size, *X.shape[1:]))

    def __call__(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(xb, yb, real)`` for ``slots`` ``(a, B)`` (sample ids, -1 padding): inputs ``(a, B,
        ...)`` (a view of the buffer, valid until the next call), labels ``(a, B)`` and the mask
        of real (not padded) slots. Padded slots read sample 0."""
        a, B = slots.shape
        real = slots >= 0
        flat = slots.clamp(min=0).reshape(-1)
        xb = torch.index_select(self.X, 0, flat, out=self.buffer[:a * B])
        return xb.view(a, B, *self.X.shape[1:]), self.y.index_select(0, flat).view(a, B), real


#: A parameter whose per-model size is a multiple of this is updated by one fused-Adam call over
#: the models sharing a step count: every element then takes the kernel's vector path, as it does
#: per model (the kernel's scalar tail rounds differently, so other sizes go model by model).
_FLAT_ADAM_MULTIPLE = 64


class _StackedOptimizer:
    """Adam or SGD with torch's maths on stacked parameters, one step count per model.

    :meth:`step` moves models ``0 .. a - 1`` (a prefix) and leaves the others' weights and state
    untouched. Adam runs torch's fused kernel (what ``torch.optim.Adam(fused=True)`` runs) with
    each model's own step count: on one flat view per run of models with equal counts for
    parameters of a size that allows it (:data:`_FLAT_ADAM_MULTIPLE`), else on one view per model
    and parameter (made once). Either way each element sees the arithmetic it would see in a
    model trained alone.
    """

    def __init__(self, params: dict[str, torch.Tensor], n_models: int, cfg: TrainConfig) -> None:
        self.params = params
        self.cfg = cfg
        self.adam = cfg.optimizer == "adam"
        self.state1 = {n: torch.zeros_like(p) for n, p in params.items()}   # exp_avg / momentum
        self.state2 = {n: torch.zeros_like(p) for n, p in params.items()} if self.adam else {}
        self.counts = np.zeros(n_models, dtype=np.int64)
        self.flat = {n: p[0].numel() % _FLAT_ADAM_MULTIPLE == 0 for n, p in params.items()}
        self._views = {n: tuple(list(t.unbind(0)) for t in (p, self.state1[n], self.state2[n]))
                       for n, p in params.items() if self.adam and not self.flat[n]}
        self._step_tensors: dict[int, torch.Tensor] = {}

    def step(self, grads: dict[str, torch.Tensor], a: int, lr: float) -> None:
        """One update of models ``0 .. a - 1`` with ``grads[name]`` of shape ``(a, ...)``."""
        self.counts[:a] += 1
        if self.adam:
            self._adam(grads, a, lr)
        else:
            self._sgd(grads, a, lr)

    def _runs(self, a: int) -> list[tuple[int, int, torch.Tensor]]:
        """``(i0, i1, step)``: models ``i0 .. i1 - 1`` of the prefix share the step count held by
        the float32 tensor ``step`` (counts come in runs: models are sorted by subset size)."""
        counts = self.counts[:a]
        starts = [0, *(np.flatnonzero(np.diff(counts)) + 1).tolist()]
        out = []
        for i0, i1 in zip(starts, [*starts[1:], a]):
            c = int(counts[i0])
            if c not in self._step_tensors:
                self._step_tensors[c] = torch.tensor(float(c), dtype=torch.float32)
            out.append((i0, i1, self._step_tensors[c]))
        return out

    def _adam(self, grads: dict[str, torch.Tensor], a: int, lr: float) -> None:
        runs = self._runs(a)
        ps, gs, ms, vs, st = [], [], [], [], []
        for n, g in grads.items():
            g = g.contiguous()                      # the kernel assumes dense layouts
            if self.flat[n]:
                for i0, i1, step in runs:
                    ps.append(self.params[n][i0:i1].view(-1))
                    gs.append(g[i0:i1].view(-1))
                    ms.append(self.state1[n][i0:i1].view(-1))
                    vs.append(self.state2[n][i0:i1].view(-1))
                    st.append(step)
                continue
            p_views, m_views, v_views = self._views[n]
            ps += p_views[:a]
            gs += g.unbind(0)
            ms += m_views[:a]
            vs += v_views[:a]
            for i0, i1, step in runs:
                st += [step] * (i1 - i0)
        torch._fused_adam_(ps, gs, ms, vs, [], st, lr=lr, beta1=0.9, beta2=0.999,
                           weight_decay=self.cfg.weight_decay, eps=1e-8, amsgrad=False, maximize=False)

    def _sgd(self, grads: dict[str, torch.Tensor], a: int, lr: float) -> None:
        for n, g in grads.items():
            p = self.params[n][:a]
            if self.cfg.weight_decay:
                g = g + self.cfg.weight_decay * p
            buf = self.state1[n][:a]
            # torch's SGD: buf = momentum * buf + g (buf = g at the first step)
            buf.mul_(self.cfg.momentum).add_(g)
            p.sub_(buf * lr)


class _StackedLinear(torch.autograd.Function):
    """``x @ W^T + b`` for a stack of linear layers: ``x (a, B, in)``, ``W (a, out, in)``,
    ``b (a, out)`` -> ``(a, B, out)``.

    The forward and the input gradient are the kernels ``vmap`` runs for ``nn.Linear``; the weight
    gradient is ``bmm(grad^T, x)``, dense in the weight's own layout, where ``vmap`` computes
    ``bmm(x^T, grad)`` and transposes it (a copy per step before the optimizer). Both sum the
    same products over the batch; the results agree bit for bit in the tests (MKL, batch sizes up
    to 300) but that is not guaranteed for every BLAS.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = torch.bmm(x, weight.transpose(1, 2))
        return out if bias is None else out + bias.unsqueeze(1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        gx = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        gb = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


#: Layers the stacked fast path computes (besides nn.Linear): elementwise or reshaping only.
_CHAIN_LAYERS = (nn.Flatten, nn.ReLU, nn.Identity)


def _has_hooks(module: nn.Module) -> bool:
    """Whether forward or backward hooks are registered on ``module``, a submodule, or globally
    for every module (``functional_call`` runs them; the linear fast path would not)."""
    from torch.nn.modules import module as _module

    kinds = ("forward_hooks", "forward_pre_hooks", "backward_hooks", "backward_pre_hooks")
    return (any(getattr(_module, f"_global_{k}", None) for k in kinds)
            or any(getattr(m, f"_{k}", None) for m in module.modules() for k in kinds))


def _linear_chain(template: nn.Module, input_ndim: int,
                  input_dtype: torch.dtype) -> list[tuple[str, nn.Module]] | None:
    """``(parameter prefix, layer)`` pairs if ``template`` is an ``nn.Linear`` or an
    ``nn.Sequential`` of ``Linear``, ``Flatten`` (default dims), ``ReLU`` and ``Identity`` layers
    with float32 parameters that all train, on float32 inputs of ``input_ndim`` dimensions
    (batch included); ``None`` for anything else (the generic ``vmap`` path). Exact types only:
    a subclass may change ``forward``. Also ``None`` when a module has hooks (they may change what
    it computes) or when parameters are shared (a module listed twice, tied weights): the chain
    reads each ``Linear``'s own parameters under its own name."""
    if type(template) is nn.Linear:
        layers = [("", template)]
    elif type(template) is nn.Sequential:
        # every entry as often as it runs (named_children would list a shared module once)
        layers = [(f"{name}.", layer) for name, layer in template._modules.items()]
    else:
        return None
    if input_dtype != torch.float32 or any(True for _ in template.buffers()) or \
            any(p.dtype != torch.float32 or not p.requires_grad for p in template.parameters()):
        return None
    own = [prefix + n for prefix, layer in layers if type(layer) is nn.Linear
           for n, _ in layer.named_parameters(recurse=False)]
    if sorted(own) != sorted(n for n, _ in template.named_parameters()) or _has_hooks(template):
        return None
    ndim = input_ndim
    for _, layer in layers:
        if type(layer) is nn.Linear and ndim != 2:
            return None
        if type(layer) is nn.Flatten:
            if (layer.start_dim, layer.end_dim) != (1, -1):
                return None
            ndim = 2
        elif type(layer) is not nn.Linear and type(layer) not in _CHAIN_LAYERS:
            return None
    return layers


_StackForward = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor], torch.Tensor]


def _stack_forward(template: nn.Module, input_ndim: int, input_dtype: torch.dtype) -> _StackForward:
    """``forward(params, rest, xb)``: the logits ``(a, B, C)`` of ``a`` stacked models on their
    own batches ``xb (a, B, ...)``, with ``params``/``rest`` stacked parameters and buffers.

    A chain of linear layers (:func:`_linear_chain`) runs as batched matrix products
    (:class:`_StackedLinear`); any other architecture runs through ``vmap(functional_call)``.
    """
    from torch.func import functional_call, vmap

    layers = _linear_chain(template, input_ndim, input_dtype)
    if layers is None:
        base = copy.deepcopy(template)

        def one(p, b, x):
            return functional_call(base, ({**p, **b}), (x,))

        return vmap(one, in_dims=(0, 0, 0), randomness="error")

    def chain(params: dict[str, torch.Tensor], rest: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        for prefix, layer in layers:
            if type(layer) is nn.Linear:
                x = _StackedLinear.apply(x, params[prefix + "weight"], params.get(prefix + "bias"))
            elif type(layer) is nn.Flatten:
                x = x.flatten(2)
            elif type(layer) is nn.ReLU:
                x = torch.relu(x)
        return x

    return chain


def train_many(model_factory: Any, X: Any, y: Any, members: Sequence[Any], *,
               config: TrainConfig | None = None, n_classes: int | None = None,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
               models_per_chunk: int = 200, callback: EnsembleCallback | None = None,
               sample_keys: np.ndarray | None = None) -> ModelStack:
    """Train one model per entry of ``members`` on ``X[members[m]]``, all at once.

    Parameters
    ----------
    model_factory : callable or nn.Module
        ``ModelSpec -> nn.Module`` (called once; its weights are re-initialised per model from
        :func:`model_seed`), or a module used as the architecture (deep-copied, never trained).
    X, y : ndarray
        All the training data; ``y`` int labels.
    members : sequence of int arrays
        ``members[m]``: the rows of ``X`` model ``m`` trains on (subsets may overlap: Finite
        Aggregation, federated clients; :func:`members_from_groups` turns a group id per sample
        into this). An empty subset leaves its model at its initial weights.
    config : TrainConfig, optional
        ``epochs``, ``batch_size`` (per model), ``lr``, ``optimizer`` ("adam" or "sgd" with
        ``momentum``), ``weight_decay`` (L2, as torch's Adam/SGD), ``lr_schedule``,
        ``label_smoothing`` and ``seed``. ``patience`` is refused (no validation split per model).
    n_classes : int, optional
        Default ``y.max() + 1``.
    loss_fn : callable, optional
        ``loss_fn(logits, y) -> (B,)`` per-sample losses (default cross-entropy with the
        config's label smoothing); each model minimises the mean over its real batch slots.
    models_per_chunk : int, default=200
        Models trained together (memory ~ chunk x batch x activations); chunks run in turn.
    callback : callable, optional
        ``callback("chunk", {"models_done", "n_models", "seconds"})``.
    sample_keys : uint64 array of shape (n_samples,), optional
        A content hash per sample (:func:`poisonlab.defenses.training.partition.content_hashes`):
        each model's batch order is then keyed on its samples' content instead of their row
        numbers, so inserting or removing a sample anywhere changes only the models that train
        on it (what a partition certificate assumes). Default: row numbers.

    Returns
    -------
    ModelStack

    Notes
    -----
    Cost: every epoch evaluates ``models_per_chunk x batch_size`` slots per step for
    ``ceil(max_m n_m / batch_size)`` steps, so subsets of similar size waste little; the slots
    of models with no batch left are masked, not skipped. Linear chains (:func:`_linear_chain`)
    run as batched matrix products, anything else through ``vmap``; both give the same weights
    (bit for bit in the tests, with MKL).
    """
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    cfg.validate()
    if cfg.patience is not None:
        raise InvalidParameterError("train_many has no validation split per model: patience must be None")
    if not isinstance(models_per_chunk, int) or isinstance(models_per_chunk, bool) or models_per_chunk < 1:
        raise InvalidParameterError(f"models_per_chunk must be a positive int; got {models_per_chunk!r}")
    Xa = check_array(X, "X", min_ndim=2)
    ya = check_labels(y, len(Xa))
    C = int(n_classes) if n_classes is not None else int(ya.max()) + 1
    subsets = [np.asarray(m, dtype=np.int64).reshape(-1) for m in members]
    M = len(subsets)
    if M < 1:
        raise DataError("members must list at least one subset (one model)")
    for m, s in enumerate(subsets):
        if s.size and (s.min() < 0 or s.max() >= len(Xa)):
            raise DataError(f"members[{m}] has row indices outside [0, {len(Xa)})")
    Xt = to_tensor(Xa if Xa.flags.writeable else Xa.copy())
    yt = torch.as_tensor(np.array(ya), dtype=torch.int64)
    spec = ModelSpec(tuple(Xa.shape[1:]), C)
    template = _build(model_factory, spec)
    refuse_unstackable(template)
    template = template.to(torch.float32) if not any(p.is_complex() for p in template.parameters()) else template
    names = [n for n, p in template.named_parameters() if p.requires_grad]
    frozen = {n: p for n, p in template.named_parameters() if not p.requires_grad}

    def loss_of(logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if loss_fn is None:
            return nn.functional.cross_entropy(logits, yb, reduction="none", label_smoothing=cfg.label_smoothing)
        out = loss_fn(logits, yb)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(yb),):
            raise InvalidParameterError(f"loss_fn must return one loss per sample, shape ({len(yb)},)")
        return out

    all_params: dict[str, list[torch.Tensor]] = {n: [] for n, _ in template.named_parameters()}
    all_buffers: dict[str, list[torch.Tensor]] = {n: [] for n, _ in template.named_buffers()}
    forward = _stack_forward(template, Xt.ndim, Xt.dtype)
    gather = _BatchGather(Xt, yt, min(M, models_per_chunk), cfg.batch_size)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        for m0 in range(0, M, models_per_chunk):
            m1 = min(M, m0 + models_per_chunk)
            drawn, buffers = _stack_initial_weights(template, cfg.seed, m0, m1)
            sizes_in = np.array([subsets[m].size for m in range(m0, m1)])
            # largest subsets first: at step s the models with a batch left are a prefix (views,
            # no copies); a model's arithmetic does not depend on its position
            rank = np.argsort(-sizes_in, kind="stable")
            ids = np.arange(m0, m1)[rank]
            perm = torch.from_numpy(rank)
            params = {n: drawn[n][perm].contiguous() for n in names}
            rest = {**{n: drawn[n][perm].contiguous() for n in frozen},
                    **{n: b[perm].contiguous() for n, b in buffers.items()}}
            _train_chunk(forward, loss_of, params, rest, _padded_rows(subsets, ids), ids, gather, cfg, sample_keys)
            back = torch.from_numpy(np.argsort(rank))
            for n in all_params:
                all_params[n].append((params[n] if n in params else rest[n])[back])
            for n in all_buffers:
                all_buffers[n].append(rest[n][back])
            if callback is not None:
                callback("chunk", {"models_done": m1, "n_models": M, "seconds": time.perf_counter() - t0})
    stacked = {n: torch.cat(v) for n, v in all_params.items()}
    stacked_b = {n: torch.cat(v) for n, v in all_buffers.items()}
    return ModelStack(template=template.eval(), params=stacked, buffers=stacked_b, n_classes=C,
                      models_per_chunk=models_per_chunk)


def _padded_rows(subsets: Sequence[np.ndarray], ids: np.ndarray) -> np.ndarray:
    """``(len(ids), width)`` int64: row ``j`` holds ``subsets[ids[j]]`` sorted, then -1 padding
    (``width``: the largest subset, at least 1)."""
    sizes = [subsets[m].size for m in ids]
    rows = np.full((len(ids), max(max(sizes), 1)), -1, dtype=np.int64)
    for j, m in enumerate(ids):
        rows[j, :sizes[j]] = np.sort(subsets[m])
    return rows


def _train_chunk(forward: _StackForward, loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 params: dict[str, torch.Tensor], rest: dict[str, torch.Tensor], rows: np.ndarray,
                 ids: np.ndarray, gather: _BatchGather, cfg: TrainConfig, sample_keys: np.ndarray | None) -> None:
    """Train the stacked models of one chunk in place.

    Each epoch takes ``ceil(width / B)`` steps; at step ``s`` the models with a batch left (a
    prefix: largest subsets first) take one step on the mean loss over their real batch slots.

    Parameters
    ----------
    forward : callable
        :func:`_stack_forward`'s ``forward(params, rest, xb) -> logits (a, B, C)``.
    loss_of : callable
        ``loss_of(logits (n, C), y (n,)) -> (n,)`` per-slot losses.
    params : dict of str -> Tensor
        The trained parameters, stacked ``(n_models, ...)``; updated in place.
    rest : dict of str -> Tensor
        Frozen parameters and buffers, stacked.
    rows : int64 ndarray of shape (n_models, width)
        Each model's samples (:func:`_padded_rows`), largest subsets first.
    ids : int ndarray of shape (n_models,)
        Each row's model id (its epoch orders depend on it).
    gather : _BatchGather
        The training data and the batch buffer.
    cfg : TrainConfig
    sample_keys : uint64 ndarray, optional
        As :func:`train_many`'s.
    """
    names = list(params)
    B = cfg.batch_size
    sizes = (rows >= 0).sum(1)
    n_steps = math.ceil(rows.shape[1] / B)
    active = [int((sizes > s * B).sum()) for s in range(n_steps)]     # models with a batch left
    opt = _StackedOptimizer(params, len(rows), cfg)
    for epoch in range(cfg.epochs):
        lr = cfg.lr * _lr_factor(cfg.lr_schedule, epoch, cfg.epochs)
        slots = _epoch_slots(rows, ids, cfg.seed, epoch, sample_keys, B, n_steps)
        for s, a in enumerate(active):
            if a == 0:                                  # every subset empty: nothing to train
                continue
            xb, yb, real = gather(slots[s, :a])
            pa = {n: params[n][:a].detach().requires_grad_(True) for n in names}
            logits = forward(pa, {n: v[:a] for n, v in rest.items()}, xb)
            losses = loss_of(logits.reshape(a * B, -1), yb.reshape(-1)).reshape(a, B)
            wf = real.to(losses.dtype)
            per_model = (losses * wf).sum(1) / wf.sum(1)
            grads = torch.autograd.grad(per_model.sum(), [pa[n] for n in names])
            with torch.no_grad():
                opt.step(dict(zip(names, grads)), a, lr)


def gabor_bank(size: int = 7, n_orientations: int = 8, wavelengths: Sequence[float] = (4.0, 7.0),
               sigma_ratio: float = 0.5) -> torch.Tensor:
    """Even (cosine) Gabor filters, zero-mean and L1-normalised: ``(len(wavelengths) *
    n_orientations, 1, size, size)`` float32. Fixed by its arguments, never by data.

    >>> tuple(gabor_bank().shape)
    (16, 1, 7, 7)
    """
    r = (size - 1) / 2
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    kernels = []
    for lam in wavelengths:
        sig = sigma_ratio * lam
        for i in range(n_orientations):
            th = math.pi * i / n_orientations
            xr = xx * math.cos(th) + yy * math.sin(th)
            yr = -xx * math.sin(th) + yy * math.cos(th)
            g = np.exp(-(xr ** 2 + yr ** 2) / (2 * sig ** 2)) * np.cos(2 * math.pi * xr / lam)
            g = g - g.mean()
            kernels.append(g / np.abs(g).sum())
    return torch.tensor(np.array(kernels), dtype=torch.float32).unsqueeze(1)


class GaborFeatures(nn.Module):
    """A fixed, data-independent feature map for small grey images: a Gabor filter bank
    (:func:`gabor_bank`), both half-wave rectifications, average pooling, flattened.

    Partition ensembles apply it once to every input instead of once per base model; since it
    depends on no data it leaves every base model a function of its own partition (what the
    certificates need). On 28 x 28 inputs with ``pool=7``: 16 filters x 2 signs x 4 x 4 = 512
    features. Fifty MNIST digits per model give ~71% test accuracy with a linear head on these
    features (R16), against ~65% for a small CNN trained from pixels for the same time.

    Examples
    --------
    >>> import torch
    >>> tuple(GaborFeatures()(torch.zeros(2, 1, 28, 28)).shape)
    (2, 512)
    """

    def __init__(self, size: int = 7, n_orientations: int = 8, wavelengths: Sequence[float] = (4.0, 7.0),
                 pool: int = 7, scale: float = 4.0) -> None:
        super().__init__()
        self.register_buffer("weight", gabor_bank(size, n_orientations, wavelengths))
        self.pad = size // 2
        self.pool = pool
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = nn.functional.conv2d(x, self.weight, padding=self.pad)
        r = torch.cat([r.clamp(min=0), (-r).clamp(min=0)], dim=1)
        return nn.functional.avg_pool2d(r, self.pool).flatten(1) * self.scale


__all__ = ("EnsembleCallback", "GaborFeatures", "ModelStack", "gabor_bank", "members_from_groups", "model_seed",
           "train_many")
