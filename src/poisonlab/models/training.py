"""The training loop: seeded, batched, early stopping on a held-out split, progress callback.

Determinism: every random draw (initialisation, shuffling, dropout) comes from one seed. The
loop runs inside ``torch.random.fork_rng`` so the caller's global torch RNG state is restored
afterwards: training never changes the state other code sees.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .._validation import check_option, check_scalar
from ..exceptions import InvalidParameterError

#: ``callback(event, info)``: event "batch" (info: epoch, batch, n_batches) or "epoch" (info:
#: epoch, epochs, train_loss, val_accuracy, val_loss).
ProgressCallback = Callable[[str, dict], None]


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
    """Integer arrays (token ids) stay int64; everything else becomes float32."""
    arr = np.asarray(X)
    if np.issubdtype(arr.dtype, np.integer):
        return torch.as_tensor(arr, dtype=torch.int64)
    return torch.as_tensor(arr, dtype=torch.float32)


def reset_parameters(module: nn.Module) -> None:
    """Re-run each submodule's own ``reset_parameters`` (PyTorch's default initialisation)."""
    for m in module.modules():
        if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
            m.reset_parameters()


def _optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


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
                 ) -> TrainHistory:
    """Train ``module`` in place with cross-entropy; return its history.

    ``batch_transform(module, x, y)`` replaces each training batch's inputs before the step
    (adversarial training, :class:`~poisonlab.models.robust.AdversarialTraining`; augmentation).

    ``reset`` re-initialises the weights from ``config.seed`` first, so the same seed and data
    give the same model whatever state the module was in. With ``config.patience`` and
    validation data, training stops early and the best epoch's weights are restored.
    """
    config.validate()
    if config.patience is not None and X_val is None:
        raise InvalidParameterError("patience (early stopping) needs validation data X_val, y_val")
    Xt, yt = to_tensor(X), torch.as_tensor(np.asarray(y), dtype=torch.int64)
    has_val = X_val is not None
    if has_val:
        Xv, yv = to_tensor(X_val), torch.as_tensor(np.asarray(y_val), dtype=torch.int64)
    hist = TrainHistory()
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(config.seed)
        if reset:
            reset_parameters(module)
        gen = torch.Generator().manual_seed(config.seed + 1)
        opt = _optimizer(module, config)
        sched = _scheduler(opt, config)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        best_acc, best_state, bad_epochs = -1.0, None, 0
        n = len(Xt)
        n_batches = (n + config.batch_size - 1) // config.batch_size
        for epoch in range(config.epochs):
            module.train()
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for b in range(n_batches):
                idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                opt.zero_grad(set_to_none=True)
                xb, yb = Xt[idx], yt[idx]
                if batch_transform is not None:
                    xb = batch_transform(module, xb, yb)
                loss = loss_fn(module(xb), yb)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                if callback is not None:
                    callback("batch", {"epoch": epoch, "batch": b + 1, "n_batches": n_batches})
            if sched is not None:
                sched.step()
            hist.train_loss.append(total / n)
            info = {"epoch": epoch + 1, "epochs": config.epochs, "train_loss": total / n}
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
