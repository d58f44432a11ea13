"""The training loop: seeded, batched, early stopping on a held-out split, progress callback.

Determinism: every random draw (initialisation, shuffling, dropout) comes from one seed. The
loop runs inside ``torch.random.fork_rng`` so the caller's global torch RNG state is restored
afterwards: training never changes the state other code sees.

Robust trainers wrap the loop rather than fork it (as Opacus wraps the user's objects):
:func:`train_module` takes an ``optimizer_factory`` (DP-SGD's noisy optimizer), a per-sample
``loss_fn`` (anti-backdoor learning's loss ascent, trimmed loss), a ``loader_factory`` (Poisson
sampling, partitions) and an ``on_batch_losses`` hook that sees each sample's loss.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from .._validation import check_option, check_scalar
from ..exceptions import InvalidParameterError

#: ``callback(event, info)``: event "batch" (info: epoch, batch, n_batches) or "epoch" (info:
#: epoch, epochs, train_loss, val_accuracy, val_loss).
ProgressCallback = Callable[[str, dict], None]

#: ``optimizer_factory(params, config) -> torch.optim.Optimizer`` over the trainable parameters.
OptimizerFactory = Callable[[list, "TrainConfig"], "torch.optim.Optimizer"]

#: ``loss_fn(logits, y) -> losses``: one loss per sample, shape ``(B,)`` (``reduction="none"``).
LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]

#: ``loader_factory(n, config, generator) -> iterable of 1-D int64 index tensors``, one per batch,
#: indices into the ``n`` training samples; called at the start of every epoch.
LoaderFactory = Callable[[int, "TrainConfig", "torch.Generator"], Iterable["torch.Tensor"]]

#: ``on_batch_losses(indices, losses)``: the batch's sample indices and their detached losses.
BatchLossHook = Callable[["torch.Tensor", "torch.Tensor"], None]


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (the object procedure-tampering attacks act on).

    Parameters
    ----------
    epochs : int, default=10
        Maximum number of epochs.
    batch_size : int, default=128
    lr : float, default=1e-3
    optimizer : {"adam", "sgd"}, default="adam"
    momentum : float, default=0.9
        SGD only.
    weight_decay : float, default=0.0
    lr_schedule : {"constant", "cosine", "step"}, default="constant"
        "step" multiplies the rate by 0.1 at half and three quarters of ``epochs``.
    label_smoothing : float in [0, 1), default=0.0
    patience : int or None, default=None
        Stop after this many epochs without a better validation accuracy, keeping the best
        weights. Needs validation data. None trains all ``epochs``.
    seed : int, default=0
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    label_smoothing: float = 0.0
    patience: int | None = None
    seed: int = 0

    def validate(self) -> "TrainConfig":
        check_scalar(self.epochs, "epochs", numbers.Integral, low=1)
        check_scalar(self.batch_size, "batch_size", numbers.Integral, low=1)
        check_scalar(self.lr, "lr", numbers.Real, low=0.0, low_inclusive=False)
        check_option(self.optimizer, "optimizer", ("adam", "sgd"))
        check_scalar(self.momentum, "momentum", numbers.Real, low=0.0, high=1.0, high_inclusive=False)
        check_scalar(self.weight_decay, "weight_decay", numbers.Real, low=0.0)
        check_option(self.lr_schedule, "lr_schedule", ("constant", "cosine", "step"))
        check_scalar(self.label_smoothing, "label_smoothing", numbers.Real, low=0.0, high=1.0,
                     high_inclusive=False)
        check_scalar(self.patience, "patience", numbers.Integral, low=1, allow_none=True)
        check_scalar(self.seed, "seed", numbers.Integral, low=0)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainHistory:
    """Per-epoch losses and accuracies, and the epoch whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def to_tensor(X: np.ndarray) -> torch.Tensor:
    """Integer arrays (token ids) stay int64; everything else becomes float32. A read-only array
    (the view a trainer hands on) is copied: torch cannot share memory it may not write."""
    arr = np.asarray(X)
    if not arr.flags.writeable:
        arr = arr.copy()
    if np.issubdtype(arr.dtype, np.integer):
        return torch.as_tensor(arr, dtype=torch.int64)
    return torch.as_tensor(arr, dtype=torch.float32)


def label_tensor(y: np.ndarray) -> torch.Tensor:
    """Labels as an int64 tensor (a read-only array is copied, as in :func:`to_tensor`)."""
    arr = np.asarray(y)
    if not arr.flags.writeable:
        arr = arr.copy()
    return torch.as_tensor(arr, dtype=torch.int64)


def reset_parameters(module: nn.Module) -> None:
    """Re-run each submodule's own ``reset_parameters`` (PyTorch's default initialisation)."""
    for m in module.modules():
        if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
            m.reset_parameters()


def default_optimizer(params: list, config: "TrainConfig") -> torch.optim.Optimizer:
    """The optimizer ``config`` names: Adam, or SGD with ``config.momentum``; the default
    ``optimizer_factory`` of :func:`train_module`.

    Examples
    --------
    >>> from torch import nn
    >>> opt = default_optimizer(list(nn.Linear(2, 2).parameters()), TrainConfig(optimizer="sgd", lr=0.1))
    >>> type(opt).__name__, opt.defaults["lr"], opt.defaults["momentum"]
    ('SGD', 0.1, 0.9)
    """
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def shuffled_batches(n: int, config: "TrainConfig", generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of batches: a random permutation of ``range(n)`` drawn from ``generator``, cut
    into consecutive batches of ``config.batch_size`` (the last one may be smaller); the default
    ``loader_factory`` of :func:`train_module`.

    Examples
    --------
    >>> import torch
    >>> batches = shuffled_batches(5, TrainConfig(batch_size=2), torch.Generator().manual_seed(0))
    >>> [len(b) for b in batches], sorted(torch.cat(batches).tolist())
    ([2, 2, 1], [0, 1, 2, 3, 4])
    """
    perm = torch.randperm(n, generator=generator)
    bs = config.batch_size
    return [perm[b * bs:(b + 1) * bs] for b in range((n + bs - 1) // bs)]


def cross_entropy_losses(logits: torch.Tensor, y: torch.Tensor, *,
                         label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-sample cross-entropy ``(B,)`` (``reduction="none"``), a ``loss_fn`` for
    :func:`train_module` (bind ``label_smoothing`` with :func:`functools.partial`).

    Examples
    --------
    >>> import torch
    >>> cross_entropy_losses(torch.zeros(3, 4), torch.tensor([0, 1, 2])).tolist() == [float(torch.log(torch.tensor(4.0)))] * 3
    True
    """
    return nn.functional.cross_entropy(logits, y, reduction="none", label_smoothing=label_smoothing)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.lr_schedule == "step":
        milestones = sorted({max(1, cfg.epochs // 2), max(1, 3 * cfg.epochs // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    return None


@torch.no_grad()
def evaluate(module: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``module`` on ``(X, y)`` (eval mode)."""
    was_training = module.training
    module.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(X), batch_size):
        logits = module(X[i:i + batch_size])
        yb = y[i:i + batch_size]
        loss_sum += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    module.train(was_training)
    return loss_sum / max(len(X), 1), correct / max(len(X), 1)


def train_module(module: nn.Module, X: np.ndarray, y: np.ndarray, config: TrainConfig, *,
                 X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                 reset: bool = True, callback: ProgressCallback | None = None,
                 batch_transform: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 optimizer_factory: OptimizerFactory | None = None,
                 loss_fn: LossFn | None = None,
                 loader_factory: LoaderFactory | None = None,
                 on_batch_losses: BatchLossHook | None = None,
                 ) -> TrainHistory:
    """Train ``module`` in place; return its history.

    Parameters
    ----------
    module : nn.Module
        Trained in place (and left in eval mode).
    X, y : ndarray
        Training inputs (integer arrays stay int64 token ids, the rest become float32) and labels.
    config : TrainConfig
    X_val, y_val : ndarray, optional
        Validation data: per-epoch loss and accuracy, and early stopping with ``config.patience``
        (the best epoch's weights are restored).
    reset : bool, default=True
        Re-initialise the weights from ``config.seed`` first, so the same seed and data give the
        same model whatever state the module was in.
    callback : callable, optional
        ``callback(event, info)``: "batch" (info: epoch, batch, n_batches; n_batches is None when
        the loader has no length) and "epoch" (epoch, epochs, train_loss, val_loss, val_accuracy).
    batch_transform : callable, optional
        ``batch_transform(module, x, y)`` replaces each training batch's inputs before the step
        (adversarial training, :class:`~poisonlab.models.robust.AdversarialTraining`; augmentation).
    optimizer_factory : callable, optional
        ``optimizer_factory(params, config) -> torch.optim.Optimizer`` over the list of trainable
        parameters; the learning-rate schedule of ``config`` wraps what it returns. Default
        :func:`default_optimizer` (Adam or SGD as ``config`` says).
    loss_fn : callable, optional
        ``loss_fn(logits, y) -> losses`` of shape ``(B,)``, one per sample; the step minimises
        their mean. Default: cross-entropy with ``config.label_smoothing``, computed with mean
        reduction for the step (bit-identical to the loop before these factories existed) and
        per sample (:func:`cross_entropy_losses`) for ``on_batch_losses``; the mean of those
        per-sample values can differ from the step's loss in the last float bit.
    loader_factory : callable, optional
        ``loader_factory(n, config, generator) -> iterable of 1-D integer index tensors``, one
        per batch, called at the start of every epoch with the loop's seeded ``torch.Generator``
        (seed ``config.seed + 1``). Default :func:`shuffled_batches`. An empty batch is skipped
        (no step: a Poisson sampler can draw one).
    on_batch_losses : callable, optional
        ``on_batch_losses(indices, losses)`` after each step: the batch's int64 indices into
        ``X`` and its detached per-sample losses (anti-backdoor learning records them).

    Returns
    -------
    TrainHistory
        ``train_loss`` is the sample-weighted mean of the step losses of each epoch.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from poisonlab.models import MLP, TrainConfig, train_module
    >>> X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32"); y = (X[:, 0] > 0).astype(int)
    >>> seen = []
    >>> hist = train_module(MLP(3, 2, hidden=(8,)), X, y, TrainConfig(epochs=2, batch_size=16),
    ...                     on_batch_losses=lambda idx, losses: seen.append(losses.shape == idx.shape))
    >>> len(hist.train_loss), len(seen), all(seen)
    (2, 6, True)

    Plain SGD without momentum through ``optimizer_factory``:

    >>> sgd = lambda params, cfg: torch.optim.SGD(params, lr=cfg.lr)
    >>> _ = train_module(MLP(3, 2, hidden=(8,)), X, y, TrainConfig(epochs=1), optimizer_factory=sgd)
    """
    config.validate()
    if config.patience is not None and X_val is None:
        raise InvalidParameterError("patience (early stopping) needs validation data X_val, y_val")
    Xt, yt = to_tensor(X), label_tensor(y)
    has_val = X_val is not None
    if has_val:
        Xv, yv = to_tensor(X_val), torch.as_tensor(np.asarray(y_val), dtype=torch.int64)
    make_batches = loader_factory if loader_factory is not None else shuffled_batches
    hist = TrainHistory()
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(config.seed)
        if reset:
            reset_parameters(module)
        gen = torch.Generator().manual_seed(config.seed + 1)
        params = [p for p in module.parameters() if p.requires_grad]
        opt = (optimizer_factory or default_optimizer)(params, config)
        if not isinstance(opt, torch.optim.Optimizer):
            raise InvalidParameterError(f"optimizer_factory must return a torch.optim.Optimizer; "
                                        f"got {type(opt).__name__}")
        sched = _scheduler(opt, config)
        best_acc, best_state, bad_epochs = -1.0, None, 0
        n = len(Xt)
        for epoch in range(config.epochs):
            module.train()
            batches = make_batches(n, config, gen)
            n_batches = len(batches) if hasattr(batches, "__len__") else None
            total, seen = 0.0, 0
            for b, idx in enumerate(batches):
                idx = _check_batch(idx, n)
                if len(idx) == 0:
                    continue
                opt.zero_grad(set_to_none=True)
                xb, yb = Xt[idx], yt[idx]
                if batch_transform is not None:
                    xb = batch_transform(module, xb, yb)
                logits = module(xb)
                if loss_fn is None:
                    loss = nn.functional.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
                    losses = None
                    if on_batch_losses is not None:
                        with torch.no_grad():
                            losses = cross_entropy_losses(logits, yb, label_smoothing=config.label_smoothing)
                else:
                    losses = _check_losses(loss_fn(logits, yb), len(idx))
                    loss = losses.mean()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
                if on_batch_losses is not None:
                    on_batch_losses(idx, losses.detach())
                if callback is not None:
                    callback("batch", {"epoch": epoch, "batch": b + 1, "n_batches": n_batches})
            if sched is not None:
                sched.step()
            train_loss = total / seen if seen else float("nan")
            hist.train_loss.append(train_loss)
            info = {"epoch": epoch + 1, "epochs": config.epochs, "train_loss": train_loss}
            if has_val:
                vl, va = evaluate(module, Xv, yv)
                hist.val_loss.append(vl)
                hist.val_accuracy.append(va)
                info.update(val_loss=vl, val_accuracy=va)
                if va > best_acc:
                    best_acc, bad_epochs, hist.best_epoch = va, 0, epoch + 1
                    if config.patience is not None:
                        best_state = copy.deepcopy(module.state_dict())
                else:
                    bad_epochs += 1
            else:
                hist.best_epoch = epoch + 1
            if callback is not None:
                callback("epoch", info)
            if config.patience is not None and bad_epochs >= config.patience:
                hist.stopped_early = epoch + 1 < config.epochs
                break
        if best_state is not None:
            module.load_state_dict(best_state)
    module.eval()
    return hist


def _check_batch(idx: Any, n: int) -> torch.Tensor:
    """A loader's batch as a 1-D int64 index tensor into ``range(n)``, or a one-line error."""
    t = torch.as_tensor(idx)
    if t.dim() != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise InvalidParameterError(f"loader_factory must yield 1-D integer index tensors; got "
                                    f"{t.dtype} of shape {tuple(t.shape)}")
    t = t.to(torch.int64)
    if len(t):
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= n:
            raise InvalidParameterError(f"loader_factory gave index {lo if lo < 0 else hi}; indices "
                                        f"must be in [0, {n}) (the training samples)")
    return t


def _check_losses(losses: Any, batch: int) -> torch.Tensor:
    if not isinstance(losses, torch.Tensor) or tuple(losses.shape) != (batch,):
        got = f"shape {tuple(losses.shape)}" if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise InvalidParameterError(f"loss_fn must return one loss per sample, a tensor of shape "
                                    f"({batch},); got {got}")
    return losses
