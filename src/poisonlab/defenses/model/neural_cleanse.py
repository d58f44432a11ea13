"""Neural Cleanse: reverse-engineer a trigger per class, find the abnormally small one
(Wang et al. 2019)."""

from __future__ import annotations

import copy
import numbers
from typing import Any, Callable

import numpy as np

from ..._validation import Interval, check_array, check_is_fitted, check_scalar, check_seed
from ...base import CONTAMINATION_OR_AUTO, BaseDetector
from ...exceptions import AssumptionError, DataError, InvalidParameterError
from ...registry import register

MAD_CONSTANT = 1.4826


def anomaly_index(l1_norms: np.ndarray) -> np.ndarray:
    """Signed MAD anomaly index (Wang et al. 2019, section IV-C): ``(median - l1) / (1.4826 MAD)``.

    Positive for classes whose reversed trigger is *smaller* than typical; the paper flags
    those with an index above 2. 1.4826 makes the MAD a consistent estimator of the standard
    deviation under normality.
    """
    med = np.median(l1_norms)
    mad = MAD_CONSTANT * np.median(np.abs(l1_norms - med))
    return (med - l1_norms) / max(mad, 1e-12)


def stamp(X, mask, pattern):
    """``(1 - m) * x + m * p``: the trigger model of the paper (eq. 2)."""
    return (1 - mask) * X + mask * pattern


@register("detector", "neural_cleanse")
class NeuralCleanse(BaseDetector):
    """Neural Cleanse (Wang, Yao, Shan, Li, Viswanath, Zheng & Zhao 2019, "Neural Cleanse:
    Identifying and Mitigating Backdoor Attacks in Neural Networks").

    For every class ``t``, optimise a mask ``m`` (H x W, in [0, 1]) and a pattern ``p`` (C x H x W)
    so that stamping clean inputs, ``(1 - m) x + m p``, makes the model predict ``t``, with the
    smallest L1 norm of ``m``. A backdoored target class needs a far smaller mask than the
    others; the MAD anomaly index finds it. All classes are optimised together in one batch.

    The L1 weight follows the paper's schedule: start at ``init_cost``; once the attack success
    on the batch stays above ``asr_threshold`` for ``patience`` epochs, multiply it by 1.5; once
    it stays below, divide it by 1.5^1.5. The smallest mask that reached the threshold is kept.

    Threat model: the model may carry a patch-like backdoor; the defender has white-box gradient
    access and a few hundred clean inputs, but no poisoned data.

    Parameters
    ----------
    epochs : int, default=100
        Most passes over the clean inputs; with early stopping most classes stop after 15-40
        (R1's MNIST model: all 10 classes in about 30 s on 2 cores).
    batch_size : int, default=32
        Clean inputs per step (each step runs ``batch_size * n_classes`` inputs).
    lr : float, default=0.1
        Adam step size on the unconstrained (tanh) mask and pattern parameters.
    init_cost : float, default=1e-3
    asr_threshold : float, default=0.99
    patience : int, default=3
        Epochs above (below) the threshold before the L1 weight is raised (lowered).
    cost_multiplier : float, default=1.5
        The L1 weight is multiplied by this to raise it and divided by its 1.5th power to lower it.
    early_stop_patience : int or None, default=5
        A class stops once its weight has been both raised and lowered and its smallest mask has
        not shrunk by 1% for this many epochs (the reference implementation's rule); ``None``
        runs every class for all ``epochs``.
    clip_values : (float, float), default=(0.0, 1.0)
        Range of the inputs (the pattern stays inside it).
    contamination : "auto", default="auto"
        The paper's rule: classes whose anomaly index exceeds 2 (and whose norm is below the
        median) are flagged; ``threshold_ = 2``.
    random_state : int, Generator or None, default=0
        Seeds the mask and pattern initialisation and the batches, resolved once by ``fit``
        (``seed_``); :meth:`unlearn` reuses that seed.

    Attributes
    ----------
    seed_ : int
        The seed ``fit`` resolved from ``random_state``.
    l1_norms_, masks_, patterns_ : per class
    epochs_run_ : epochs each class was optimised for (fewer than ``epochs`` when it stopped early)
    scores_ : the signed anomaly index per class; ``flags_``: classes flagged as backdoor targets.

    Limits
    ------
    Assumes a small, input-agnostic patch trigger. Large or input-specific triggers (Blended at
    high alpha, WaNet, clean-label feature collision) give no small mask and evade it; several
    infected labels (more than half) break the median.
    """

    stage = "model"
    unit = "class"
    modalities = ("image",)

    _parameter_constraints = {
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "init_cost": [Interval(numbers.Real, 0, None, closed="left")],
        "asr_threshold": [Interval(numbers.Real, 0, 1, closed="right")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "cost_multiplier": [Interval(numbers.Real, 1, None, closed="neither")],
        "early_stop_patience": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "clip_values": ["array-like"],
        "contamination": CONTAMINATION_OR_AUTO,
        "random_state": ["random_state"],
    }

    def __init__(self, *, epochs: int = 100, batch_size: int = 32, lr: float = 0.1, init_cost: float = 1e-3,
                 asr_threshold: float = 0.99, patience: int = 3, cost_multiplier: float = 1.5,
                 early_stop_patience: int | None = 5, clip_values: tuple[float, float] = (0.0, 1.0),
                 contamination: Any = "auto", random_state: Any = 0) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.init_cost = init_cost
        self.asr_threshold = asr_threshold
        self.patience = patience
        self.cost_multiplier = cost_multiplier
        self.early_stop_patience = early_stop_patience
        self.clip_values = clip_values
        self.contamination = contamination
        self.random_state = random_state

    def _auto_threshold(self, scores: np.ndarray) -> float:
        return 2.0

    def fit(self, X: Any, *, model: Any, callback: Callable[[str, dict], None] | None = None) -> "NeuralCleanse":
        """Reverse-engineer one trigger per class on clean images ``X`` (N, C, H, W)."""
        import torch
        from torch import nn

        module = getattr(model, "module_", model)
        if not isinstance(module, nn.Module):
            raise InvalidParameterError(
                f"Neural Cleanse needs a differentiable torch model (an nn.Module or a TorchClassifier); "
                f"got {type(model).__name__}")
        X = check_array(X, "X", min_ndim=4, max_ndim=4)
        lo, hi = (float(v) for v in self.clip_values)
        if hi <= lo:
            raise InvalidParameterError(f"clip_values must be (low, high) with low < high; got {self.clip_values}")
        module = copy.deepcopy(module).eval()
        for p in module.parameters():
            p.requires_grad_(False)
        Xt = torch.as_tensor(X, dtype=torch.float32)
        try:
            with torch.no_grad():
                n_classes = module(Xt[:2]).shape[1]
        except RuntimeError as exc:
            raise DataError(f"inputs of shape {X.shape[1:]} do not fit the model: {exc}") from exc
        if n_classes < 3:
            raise AssumptionError(f"Neural Cleanse's MAD outlier test needs at least 3 classes; "
                                  f"the model has {n_classes}")
        _, C, H, W = X.shape
        self.seed_ = check_seed(self.random_state)
        gen = torch.Generator().manual_seed(self.seed_)
        mask_param = (torch.rand(n_classes, 1, H, W, generator=gen) * 2 - 1) * 0.1
        pattern_param = (torch.rand(n_classes, C, H, W, generator=gen) * 2 - 1) * 0.1
        mask_param.requires_grad_(True)
        pattern_param.requires_grad_(True)
        opt = torch.optim.Adam([mask_param, pattern_param], lr=self.lr, betas=(0.5, 0.9))
        targets = torch.arange(n_classes)
        cost = torch.full((n_classes,), float(self.init_cost))
        up = torch.zeros(n_classes, dtype=torch.long)
        down = torch.zeros(n_classes, dtype=torch.long)
        best_l1 = torch.full((n_classes,), float("inf"))
        best_mask = torch.zeros(n_classes, 1, H, W)
        best_pattern = torch.zeros(n_classes, C, H, W)
        # early stopping per class (the reference implementation's rule): once a class's cost has
        # been both raised and lowered, stop it when its best L1 has not improved by 1% for
        # `early_stop_patience` epochs; the remaining classes go on in a smaller batch
        active = torch.ones(n_classes, dtype=torch.bool)
        raised = torch.zeros(n_classes, dtype=torch.bool)
        lowered = torch.zeros(n_classes, dtype=torch.bool)
        stall = torch.zeros(n_classes, dtype=torch.long)
        stall_ref = torch.full((n_classes,), float("inf"))
        self.epochs_run_ = np.zeros(n_classes, dtype=np.int64)
        ce = nn.CrossEntropyLoss(reduction="none")
        n = len(Xt)
        mult_up, mult_down = float(self.cost_multiplier), float(self.cost_multiplier) ** 1.5
        for epoch in range(self.epochs):
            act = torch.nonzero(active).flatten()
            k = len(act)
            if k == 0:
                break
            perm = torch.randperm(n, generator=gen)
            hits = torch.zeros(n_classes)
            seen = 0
            for start in range(0, n, self.batch_size):
                xb = Xt[perm[start:start + self.batch_size]]
                b = len(xb)
                mask = (torch.tanh(mask_param[act]) + 1) / 2                      # (k, 1, H, W) in [0, 1]
                pattern = lo + (torch.tanh(pattern_param[act]) + 1) / 2 * (hi - lo)  # (k, C, H, W)
                stamped = stamp(xb[None], mask[:, None], pattern[:, None])         # (k, b, C, H, W)
                logits = module(stamped.reshape(k * b, C, H, W)).reshape(k, b, -1)
                loss_ce = ce(logits.reshape(k * b, -1), targets[act].repeat_interleave(b)).reshape(k, b)
                l1 = mask.abs().sum(dim=(1, 2, 3))
                loss = (loss_ce.mean(dim=1) + cost[act] * l1).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    hits[act] += (logits.argmax(dim=2) == targets[act][:, None]).float().sum(dim=1)
                seen += b
            with torch.no_grad():
                self.epochs_run_[act.numpy()] += 1
                mask = (torch.tanh(mask_param) + 1) / 2
                pattern = lo + (torch.tanh(pattern_param) + 1) / 2 * (hi - lo)
                l1 = mask.abs().sum(dim=(1, 2, 3))
                asr = hits / seen
                ok = (asr >= self.asr_threshold) & active
                better = ok & (l1 < best_l1)
                best_l1 = torch.where(better, l1, best_l1)
                best_mask[better] = mask[better]
                best_pattern[better] = pattern[better]
                # cost schedule (per class), as the paper's reference implementation
                up = torch.where(ok, up + 1, torch.zeros_like(up))
                down = torch.where(ok | ~active, torch.zeros_like(down), down + 1)
                zero = cost == 0
                cost = torch.where(ok & zero, torch.full_like(cost, float(self.init_cost)), cost)
                raise_ = (up >= self.patience) & ~zero
                lower = down >= self.patience
                cost = torch.where(raise_, cost * mult_up, cost)
                cost = torch.where(lower, cost / mult_down, cost)
                up = torch.where(raise_, torch.zeros_like(up), up)
                down = torch.where(lower, torch.zeros_like(down), down)
                raised |= raise_
                lowered |= lower
                if self.early_stop_patience is not None:
                    found = torch.isfinite(best_l1) & active
                    stalled = found & (best_l1 >= 0.99 * stall_ref)
                    stall = torch.where(stalled, stall + 1, torch.zeros_like(stall))
                    stall_ref = torch.where(found, torch.minimum(stall_ref, best_l1), stall_ref)
                    active &= ~(raised & lowered & (stall >= self.early_stop_patience))
            if callback is not None:
                callback("epoch", {"epoch": epoch + 1, "epochs": self.epochs, "active_classes": k,
                                   "train_loss": float(loss.detach()) / k})
        # a class that never reached the threshold keeps its last mask (reported as such)
        never = torch.isinf(best_l1)
        with torch.no_grad():
            last_mask = (torch.tanh(mask_param) + 1) / 2
            last_pattern = lo + (torch.tanh(pattern_param) + 1) / 2 * (hi - lo)
        best_mask[never] = last_mask[never]
        best_pattern[never] = last_pattern[never]
        best_l1 = torch.where(never, last_mask.abs().sum(dim=(1, 2, 3)), best_l1)
        self.l1_norms_ = best_l1.numpy().astype(np.float64)
        self.masks_ = best_mask.numpy()[:, 0]
        self.patterns_ = best_pattern.numpy()
        self.reached_threshold_ = (~never).numpy()
        self._calibrate(anomaly_index(self.l1_norms_))
        return self

    def reversed_trigger(self, target: int) -> tuple[np.ndarray, np.ndarray]:
        """``(mask, pattern)`` reversed for class ``target``."""
        check_is_fitted(self, "masks_")
        return self.masks_[target], self.patterns_[target]

    def apply_reversed_trigger(self, X: Any, target: int) -> np.ndarray:
        """Stamp ``X`` with the reversed trigger of ``target``."""
        mask, pattern = self.reversed_trigger(target)
        X = check_array(X, "X", min_ndim=4, max_ndim=4)
        return stamp(X, mask[None, None], pattern[None]).astype(X.dtype, copy=False)

    def unlearn(self, model: Any, X: Any, y: Any, *, stamp_fraction: float = 0.2, epochs: int = 1,
                lr: float = 1e-3, batch_size: int = 64) -> Any:
        """Mitigation by unlearning (paper section VI-C): fine-tune a *copy* of the model on clean
        data of which ``stamp_fraction`` is stamped with the flagged classes' reversed triggers,
        keeping the true labels. Returns the repaired copy (a TorchClassifier)."""
        from ...models.adapters import TorchClassifier
        from ...models.training import TrainConfig

        check_is_fitted(self, "flags_")
        check_scalar(stamp_fraction, "stamp_fraction", numbers.Real, low=0.0, high=1.0)
        X = check_array(X, "X", min_ndim=4, max_ndim=4)
        y = np.asarray(y)
        flagged = np.flatnonzero(self.flags_)
        rng = np.random.default_rng(self.seed_)
        Xs = X.copy()
        if len(flagged):
            idx = rng.choice(len(X), int(round(stamp_fraction * len(X))), replace=False)
            which = flagged[rng.integers(0, len(flagged), len(idx))]
            for t in flagged:
                sel = idx[which == t]
                Xs[sel] = self.apply_reversed_trigger(X[sel], int(t))
        module = getattr(model, "module_", model)
        repaired = TorchClassifier(module, config=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size,
                                                              seed=self.seed_), warm_start=True)
        return repaired.fit(Xs, y)

