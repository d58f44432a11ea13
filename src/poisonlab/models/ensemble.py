"""Many small models trained at once: stacked parameters, ``torch.func.functional_call`` + ``vmap``.

Partition ensembles (Deep Partition Aggregation: k = 1200 base models on MNIST), subset-ensemble
detectors and federated simulations train many copies of one small architecture, each on its own
subset of the data. Training them one after the other pays Python and kernel-launch overhead
1200 times; here the parameters of ``M`` copies are stacked along a leading axis and one
``vmap``-ed forward/backward pass trains all of them on their own batches (a convolution becomes
a grouped convolution, a linear layer a batched matrix product).

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
    of models with no batch left are masked, not skipped.
    """
    import time

    from torch.func import functional_call, vmap

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
    B = cfg.batch_size
    b1, b2, eps = 0.9, 0.999, 1e-8

    def loss_of(logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if loss_fn is None:
            return nn.functional.cross_entropy(logits, yb, reduction="none", label_smoothing=cfg.label_smoothing)
        out = loss_fn(logits, yb)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(yb),):
            raise InvalidParameterError(f"loss_fn must return one loss per sample, shape ({len(yb)},)")
        return out

    all_params: dict[str, list[torch.Tensor]] = {n: [] for n, _ in template.named_parameters()}
    all_buffers: dict[str, list[torch.Tensor]] = {n: [] for n, _ in template.named_buffers()}
    t0 = time.perf_counter()
    base = copy.deepcopy(template)
    with torch.random.fork_rng(devices=[]):
        for m0 in range(0, M, models_per_chunk):
            m1 = min(M, m0 + models_per_chunk)
            Mc = m1 - m0
            # initial weights: model m from seed (cfg.seed, m) alone (the CPU generator only:
            # torch.manual_seed would also queue a lazy seed per accelerator backend, per model)
            init = copy.deepcopy(template)
            draws: dict[str, list[torch.Tensor]] = {n: [] for n, _ in template.named_parameters()}
            bufs: dict[str, list[torch.Tensor]] = {n: [] for n, _ in template.named_buffers()}
            for m in range(m0, m1):
                torch.random.default_generator.manual_seed(model_seed(cfg.seed, m))
                reset_parameters(init)
                for n, p in init.named_parameters():
                    draws[n].append(p.detach().clone())
                for n, b in init.named_buffers():
                    bufs[n].append(b.clone())
            params = {n: torch.stack(draws[n]) for n in names}
            fixed = {n: torch.stack(draws[n]) for n in frozen}
            buffers = {n: torch.stack(v) for n, v in bufs.items()}
            sizes_in = np.array([subsets[m].size for m in range(m0, m1)])
            # largest subsets first: at step s the models with a batch left are a prefix (views,
            # no copies); a model's arithmetic does not depend on its position
            rank = np.argsort(-sizes_in, kind="stable")
            ids = np.arange(m0, m1)[rank]
            sizes = sizes_in[rank]
            params = {n: p[torch.from_numpy(rank)].contiguous() for n, p in params.items()}
            fixed = {n: p[torch.from_numpy(rank)].contiguous() for n, p in fixed.items()}
            buffers = {n: b[torch.from_numpy(rank)].contiguous() for n, b in buffers.items()}
            state1 = {n: torch.zeros_like(p) for n, p in params.items()}
            state2 = {n: torch.zeros_like(p) for n, p in params.items()}
            steps = torch.zeros(Mc, dtype=torch.float64)
            step_t = [torch.zeros((), dtype=torch.float32) for _ in range(Mc)]
            width = max(int(sizes.max()), 1)
            rows = np.full((Mc, width), -1, dtype=np.int64)
            for j, m in enumerate(ids):
                rows[j, :sizes[j]] = np.sort(subsets[m])

            def one(p, b, x):
                return functional_call(base, ({**p, **b}), (x,))

            fwd = vmap(one, in_dims=(0, 0, 0), randomness="error")
            for epoch in range(cfg.epochs):
                lr = cfg.lr * _lr_factor(cfg.lr_schedule, epoch, cfg.epochs)
                order_t = torch.from_numpy(epoch_orders(rows, ids, cfg.seed, epoch, sample_keys))
                for s in range(0, math.ceil(width / B)):
                    a = int((sizes > s * B).sum())          # models with a batch left: a prefix
                    idx = order_t[:a, s * B:(s + 1) * B]
                    if idx.shape[1] < B:  # fixed slot count per model: pad the last step
                        idx = torch.cat([idx, idx.new_full((a, B - idx.shape[1]), -1)], dim=1)
                    w = (idx >= 0)
                    safe = idx.clamp(min=0)
                    xb, yb = Xt[safe], yt[safe]
                    pa = {n: params[n][:a].detach().requires_grad_(True) for n in names}
                    rest = {**{n: v[:a] for n, v in fixed.items()}, **{n: v[:a] for n, v in buffers.items()}}
                    logits = fwd(pa, rest, xb)
                    losses = loss_of(logits.reshape(a * B, -1), yb.reshape(-1)).reshape(a, B)
                    wf = w.to(losses.dtype)
                    per_model = (losses * wf).sum(1) / wf.sum(1)
                    grads = torch.autograd.grad(per_model.sum(), [pa[n] for n in names])
                    with torch.no_grad():
                        steps[:a] += 1
                        if cfg.optimizer == "adam":
                            # torch's fused Adam kernel (what torch.optim.Adam(fused=True) runs) over
                            # one view per model, each with its own step count
                            counts = step_t[:a]
                            torch._foreach_add_(counts, 1.0)
                            ps, gs, ms, vs, st = [], [], [], [], []
                            for n, g in zip(names, grads):
                                ps += params[n][:a].unbind(0)
                                gs += g.contiguous().unbind(0)   # the kernel assumes dense layouts
                                ms += state1[n][:a].unbind(0)
                                vs += state2[n][:a].unbind(0)
                                st += counts
                            torch._fused_adam_(ps, gs, ms, vs, [], st, lr=lr, beta1=b1, beta2=b2,
                                               weight_decay=cfg.weight_decay, eps=eps, amsgrad=False,
                                               maximize=False)
                            continue
                        for n, g in zip(names, grads):
                            p = params[n][:a]
                            if cfg.weight_decay:
                                g = g + cfg.weight_decay * p
                            m1_ = state1[n][:a]
                            # torch's SGD: buf = momentum * buf + g (buf = g at the first step)
                            m1_.mul_(cfg.momentum).add_(g)
                            p.sub_(m1_ * lr)
            back = torch.from_numpy(np.argsort(rank))
            params = {n: p[back] for n, p in params.items()}
            fixed = {n: p[back] for n, p in fixed.items()}
            buffers = {n: b[back] for n, b in buffers.items()}
            for n, _ in template.named_parameters():
                src = params[n] if n in params else fixed[n]
                all_params[n].append(src.detach().clone())
            for n in all_buffers:
                all_buffers[n].append(buffers[n].clone())
            if callback is not None:
                callback("chunk", {"models_done": m1, "n_models": M, "seconds": time.perf_counter() - t0})
    stacked = {n: torch.cat(v) for n, v in all_params.items()}
    stacked_b = {n: torch.cat(v) for n, v in all_buffers.items()}
    return ModelStack(template=template.eval(), params=stacked, buffers=stacked_b, n_classes=C,
                      models_per_chunk=models_per_chunk)



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
