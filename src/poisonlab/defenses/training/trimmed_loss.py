"""Iterative trimmed loss minimisation (Shen & Sanghavi, ICML 2019): every epoch, train only on
the samples the current model fits best, dropping the highest-loss fraction."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval
from ...base import BaseTrainer
from ...exceptions import InvalidParameterError
from ...registry import register
from ._torch_setup import build_module, classifier_from, per_sample_losses, resolve_config


def keep_lowest(losses: np.ndarray, trim_fraction: float) -> np.ndarray:
    """Boolean mask of the samples kept by one ITLM step: all but the ``floor(trim_fraction *
    n)`` highest losses (ties: the later index is dropped first).

    Examples
    --------
    >>> keep_lowest(np.array([0.1, 2.0, 0.3, 5.0]), 0.5).tolist()
    [True, False, True, False]
    >>> keep_lowest(np.array([0.1, 2.0, 0.3]), 0.2).tolist()    # floor(0.6) = 0 dropped
    [True, True, True]
    """
    n = len(losses)
    n_keep = n - int(np.floor(trim_fraction * n))
    keep = np.zeros(n, dtype=bool)
    keep[np.argsort(losses, kind="stable")[:n_keep]] = True
    return keep


@register("trainer", "trimmed_loss")
class TrimmedLoss(BaseTrainer):
    """Iterative trimmed loss minimisation (ITLM; Shen & Sanghavi, ICML 2019, "Learning with Bad
    Training Data via Iterative Trimmed Loss Minimization").

    After ``warmup_epochs`` epochs on all the data, each epoch starts by computing every
    sample's loss under the current model (eval mode), keeps the ``1 - trim_fraction`` with the
    lowest loss and trains one epoch on those only (a ``loader_factory`` over
    :func:`~poisonlab.models.training.train_module` that samples the kept set; the user's
    optimizer and loss go through unchanged).

    Threat model: a fraction of the training samples is bad -- flipped labels, outliers,
    poisons that disagree with the clean majority -- and the defender knows a bound on it
    (``trim_fraction`` should be at least the bad fraction).

    Parameters
    ----------
    trim_fraction : float in (0, 1), default=0.1
        Fraction of highest-loss samples left out of each epoch.
    warmup_epochs : int >= 0, default=1
        Epochs on all samples before trimming starts (ITLM needs an initial model better than
        chance; the first trim uses its losses).
    random_state : int, Generator or None
        Seeds the training when given; None keeps ``config.seed``.

    Attributes
    ----------
    classifier_ : TorchClassifier
    flags_ : ndarray of bool
        The samples left out of the last epoch.
    scores_ : ndarray of float
        The losses that decided the last trim (higher = more suspicious).
    kept_per_epoch_ : list of ndarray of bool
        The kept set of every epoch (all True during the warm-up).
    history_ : TrainHistory

    Limits
    ------
    Backdoor samples are fitted quickly and have *low* loss, so trimming high losses does not
    remove them (ABL isolates the low end instead); trimming also drops hard clean samples
    (rare classes, atypical inputs), a fairness cost to check per class. The guarantees of the
    paper are for generalised linear models; for networks it is a heuristic. One extra forward
    pass over the data per epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.training import TrimmedLoss
    >>> from poisonlab.models import TrainConfig, model_factory
    >>> X = np.random.default_rng(0).normal(size=(200, 4)).astype("float32"); y = (X[:, 0] > 0).astype(int)
    >>> tl = TrimmedLoss(trim_fraction=0.1, random_state=0).fit(
    ...     X, y, model_factory=model_factory("mlp", "tabular", hidden=(8,)), config=TrainConfig(epochs=3))
    >>> int(tl.flags_.sum()), len(tl.kept_per_epoch_)
    (20, 3)
    """

    _parameter_constraints = {
        "trim_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "warmup_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, trim_fraction: float = 0.1, warmup_epochs: int = 1, random_state: Any = None) -> None:
        self.trim_fraction = trim_fraction
        self.warmup_epochs = warmup_epochs
        self.random_state = random_state

    def _fit(self, X, y, *, model_factory, config, rng, optimizer_factory=None, loss_fn=None,
             callback=None, **hooks):
        import torch

        from ...models.training import train_module

        if hooks.get("loader_factory") is not None:
            raise InvalidParameterError("loader_factory: trimmed loss samples the kept set itself; do not "
                                        "pass a loader_factory")
        cfg = resolve_config(config, self.random_state, rng)
        if cfg.patience is not None:
            raise InvalidParameterError("config.patience: trimmed loss trains every epoch (no validation data)")
        module, spec = build_module(model_factory, X, y)
        Xa, ya = np.asarray(X), np.asarray(y)
        n, trim = len(Xa), float(self.trim_fraction)
        kept: list[np.ndarray] = []
        last = {"scores": np.zeros(n), "keep": np.ones(n, dtype=bool)}

        def loader(n_: int, config: Any, generator: "torch.Generator"):
            epoch = len(kept)
            if epoch < int(self.warmup_epochs):
                keep = np.ones(n_, dtype=bool)
            else:
                losses = per_sample_losses(module, Xa, ya)
                keep = keep_lowest(losses, trim)
                last["scores"], last["keep"] = losses, keep
            kept.append(keep)
            idx = torch.as_tensor(np.flatnonzero(keep), dtype=torch.int64)
            perm = idx[torch.randperm(len(idx), generator=generator)]
            bs = config.batch_size
            return [perm[i:i + bs] for i in range(0, len(perm), bs)]

        self.history_ = train_module(module, Xa, ya, cfg, reset=True, callback=callback,
                                     optimizer_factory=optimizer_factory, loss_fn=loss_fn, loader_factory=loader,
                                     on_batch_losses=hooks.get("on_batch_losses"))
        if len(kept) <= int(self.warmup_epochs):
            # trimming never started: score with the final model so flags_ still mean something
            last["scores"] = per_sample_losses(module, Xa, ya)
            last["keep"] = keep_lowest(last["scores"], trim)
        self.kept_per_epoch_ = kept
        self.scores_ = last["scores"]
        self.flags_ = ~last["keep"]
        self.classifier_ = classifier_from(module, spec.n_classes)
        self.config_ = cfg
