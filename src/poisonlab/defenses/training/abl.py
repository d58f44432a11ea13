"""Anti-backdoor learning (Li et al., NeurIPS 2021): backdoor samples are learned faster than
clean ones, so hold the training loss at a floor, isolate the samples whose loss still falls
lowest, and unlearn them by gradient ascent."""

from __future__ import annotations

import copy
import numbers
import warnings
from typing import Any, Callable

import numpy as np

from ..._validation import Interval, Options
from ...base import BaseTrainer
from ...exceptions import InvalidParameterError, PoisonlabWarning
from ...registry import register
from ._torch_setup import build_module, classifier_from, per_sample_losses, resolve_config

FLOORS = ("batch", "sample")

#: The official code's optimizer settings (bboylyg/ABL, ``config.py`` and
#: ``backdoor_unlearning.py``): the ascent runs with SGD, momentum 0.9, Nesterov, weight decay 1e-4.
UNLEARNING_MOMENTUM = 0.9
UNLEARNING_WEIGHT_DECAY = 1e-4

#: Below this mean loss (float32 cross-entropy) the isolated samples are saturated: the loss's
#: gradient is about as small as the loss itself, so a gradient ascent at any sensible rate
#: cannot move the model (``warning_``).
SATURATED_LOSS = 1e-6


def local_gradient_ascent(losses: "Any", gamma: float, *, per_sample: bool = False) -> "Any":
    """The loss-floor objective of ABL's isolation phase (Li et al. 2021, Eq. 5), as per-sample
    terms whose mean is the step's objective: ``sign(L - gamma) * L``.

    With ``per_sample=False`` (the official implementation) ``L`` is the batch's mean loss: the
    batch is pushed back up whenever its mean falls below ``gamma``, while single samples the
    model learns fast (the backdoor) may sink below it. With ``per_sample=True`` every sample's
    own loss is held at the floor.

    Examples
    --------
    >>> import torch
    >>> local_gradient_ascent(torch.tensor([0.1, 0.2]), 0.5).double().round(decimals=3).tolist()   # mean 0.15 < 0.5: ascend
    [-0.1, -0.2]
    >>> local_gradient_ascent(torch.tensor([0.1, 0.9]), 0.5, per_sample=True).double().round(decimals=3).tolist()
    [-0.1, 0.9]
    """
    import torch

    if per_sample:
        return torch.sign(losses.detach() - gamma) * losses
    return torch.sign(losses.detach().mean() - gamma) * losses


def lowest_fraction(losses: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``ceil(fraction * n)`` lowest values (ties: the earlier index).

    Examples
    --------
    >>> lowest_fraction(np.array([0.3, 0.1, 0.2, 0.9]), 0.5).tolist()
    [False, True, True, False]
    """
    k = int(np.ceil(fraction * len(losses)))
    mask = np.zeros(len(losses), dtype=bool)
    mask[np.argsort(losses, kind="stable")[:k]] = True
    return mask


@register("trainer", "abl")
class AntiBackdoorLearning(BaseTrainer):
    """Anti-backdoor learning (ABL; Li, Lyu, Koren, Lyu, Li & Ma, NeurIPS 2021, "Anti-Backdoor
    Learning: Training Clean Models on Poisoned Data").

    Three phases over one model, each a :func:`~poisonlab.models.training.train_module` run:

    1. **Isolation**: ``isolation_epochs`` epochs on all the data with the loss floor
       ``sign(L - gamma) * L`` (local gradient ascent, :func:`local_gradient_ascent`): clean
       samples cannot be fitted below ``gamma``, while backdoor samples, learned much faster
       through their shortcut, still reach the lowest losses.
    2. The ``isolation_rate`` fraction of samples with the lowest loss (eval mode) is
       isolated (``flags_``); the model keeps training on the rest for ``finetune_epochs``
       epochs (the paper's clean term ``sum over D_c of L``).
    3. **Unlearning**: ``unlearning_epochs`` epochs of gradient *ascent* on the isolated
       samples only (loss ``-L``, the batch's mean cross-entropy negated) at learning rate
       ``unlearning_lr``, which breaks the association between the trigger and the target class.

    Fidelity to the official code (github.com/bboylyg/ABL): ``backdoor_unlearning.py`` loads
    the isolation model, by default fine-tunes it on the other 99% (60 epochs, SGD 0.1: "to
    improve the clean acc of the isolation model", optional per its README; that data still
    holds the poisons that were not isolated), then ascends ``-CrossEntropy`` on the isolated
    examples only, with no clipping or flooding, for 5 epochs at 5e-4 with SGD (momentum 0.9,
    Nesterov, weight decay 1e-4) in batches of the training's size. This class does the same;
    the unlearning optimizer is that SGD (Nesterov and weight decay 1e-4 added in the R15
    review, they were missing) unless ``optimizer_factory`` is given.

    Cross-entropy ascent starts from the isolated samples' gradient, which is about as small as
    their loss: when fine-tuning has pushed their logit margin past ~17 the float32 loss is
    exactly 0 and the ascent cannot move at any learning rate (R15 on MNIST, seed 0: margins
    17.5-39 after 3 Adam epochs, loss 0, gradient norm 1.5e-8; the official CIFAR-10 demo's
    backdoored test loss is 7e-4 before its ascent). ``unlearning_start_loss_`` records the
    start, and ``warning_`` (with a :class:`~poisonlab.exceptions.PoisonlabWarning`) flags one
    below ``SATURATED_LOSS`` (1e-6).

    Threat model: the attacker poisons a fraction of the training set with a backdoor (any
    trigger, all-to-one or all-to-all); the defender trains on it and controls the procedure.

    Parameters
    ----------
    gamma : float > 0, default=0.5
        The loss floor of the isolation phase.
    isolation_epochs : int >= 1, default=20
        Epochs of the isolation phase (the paper: 20; R15 uses 5 on MNIST).
    isolation_rate : float in (0, 1), default=0.01
        Fraction of the training set isolated (the paper: 1%).
    floor : {"batch", "sample"}, default="batch"
        Whether the floor applies to the batch's mean loss (the official code) or to each
        sample's loss.
    finetune_epochs : int >= 0, default=5
        Epochs of plain training on the non-isolated samples between isolation and unlearning
        (the floor leaves the model under-fitted on clean data).
    unlearning_epochs : int >= 1, default=5
    unlearning_lr : float > 0, default=5e-4
        Learning rate of the ascent (the official code: 5e-4), with the official code's SGD
        (momentum 0.9, Nesterov, weight decay 1e-4), or the ``optimizer_factory`` given to ``fit``.
    random_state : int, Generator or None
        Seeds the training when given; None keeps ``config.seed``.

    Attributes
    ----------
    classifier_ : TorchClassifier
    flags_ : ndarray of bool
        The isolated samples.
    scores_ : ndarray of float
        Minus each sample's loss after the isolation phase (higher = more suspicious).
    histories_ : dict
        The :class:`~poisonlab.models.training.TrainHistory` of each phase.
    unlearning_start_loss_ : float
        Mean cross-entropy (eval mode) of the isolated samples when the unlearning starts.
    warning_ : str or None
        Why the unlearning could not work (the isolated samples' loss is saturated), or None.

    Limits
    ------
    Rests on backdoor samples being learned faster than clean ones: clean-label and
    sample-specific attacks that are slow to learn are isolated worse, and a poison rate far
    above ``isolation_rate`` leaves most poisons in the fine-tuning set (the unlearning then
    has to generalise from the isolated ones). ``gamma`` is data dependent (the paper tunes it
    per dataset). Gradient ascent is unbounded: too high an ``unlearning_lr`` or too many
    epochs destroys clean accuracy as well.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.training import AntiBackdoorLearning
    >>> from poisonlab.models import TrainConfig, model_factory
    >>> X = np.random.default_rng(0).normal(size=(200, 4)).astype("float32"); y = (X[:, 0] > 0).astype(int)
    >>> abl = AntiBackdoorLearning(isolation_epochs=2, finetune_epochs=1, unlearning_epochs=1,
    ...                            isolation_rate=0.05, random_state=0).fit(
    ...     X, y, model_factory=model_factory("mlp", "tabular", hidden=(8,)), config=TrainConfig(batch_size=50))
    >>> int(abl.flags_.sum()), abl.predict(X[:3]).shape
    (10, (3,))
    """

    _parameter_constraints = {
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "isolation_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "isolation_rate": [Interval(numbers.Real, 0, 1, closed="neither")],
        "floor": [Options(FLOORS)],
        "finetune_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "unlearning_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "unlearning_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, gamma: float = 0.5, isolation_epochs: int = 20, isolation_rate: float = 0.01,
                 floor: str = "batch", finetune_epochs: int = 5, unlearning_epochs: int = 5,
                 unlearning_lr: float = 5e-4, random_state: Any = None) -> None:
        self.gamma = gamma
        self.isolation_epochs = isolation_epochs
        self.isolation_rate = isolation_rate
        self.floor = floor
        self.finetune_epochs = finetune_epochs
        self.unlearning_epochs = unlearning_epochs
        self.unlearning_lr = unlearning_lr
        self.random_state = random_state

    def _fit(self, X, y, *, model_factory, config, rng, optimizer_factory=None, loss_fn=None,
             loader_factory=None, callback=None, **hooks):
        from ...models.training import cross_entropy_losses, train_module

        n = len(X)
        if int(np.ceil(self.isolation_rate * n)) >= n:
            raise InvalidParameterError(f"isolation_rate={self.isolation_rate!r} isolates all {n} samples; "
                                        f"nothing would be left to train on")
        cfg = resolve_config(config, self.random_state, rng)
        module, spec = build_module(model_factory, X, y)
        base_loss: Callable = loss_fn or (lambda logits, t: cross_entropy_losses(
            logits, t, label_smoothing=cfg.label_smoothing))
        gamma, per_sample = float(self.gamma), self.floor == "sample"
        Xa, ya = np.asarray(X), np.asarray(y)
        common = dict(optimizer_factory=optimizer_factory, callback=callback,
                      on_batch_losses=hooks.get("on_batch_losses"))
        histories = {}
        # 1. isolation: the loss floor on every sample
        iso_cfg = _replace(cfg, epochs=int(self.isolation_epochs), patience=None)
        histories["isolation"] = train_module(
            module, Xa, ya, iso_cfg, reset=True, loader_factory=loader_factory,
            loss_fn=lambda logits, t: local_gradient_ascent(base_loss(logits, t), gamma, per_sample=per_sample),
            **common)
        losses = per_sample_losses(module, Xa, ya)
        isolated = lowest_fraction(losses, float(self.isolation_rate))
        # 2. keep training on the rest
        if self.finetune_epochs:
            ft_cfg = _replace(cfg, epochs=int(self.finetune_epochs), patience=None, seed=cfg.seed + 2)
            histories["finetune"] = train_module(module, Xa[~isolated], ya[~isolated], ft_cfg, reset=False,
                                                 loss_fn=loss_fn, **common)
        # 3. unlearning: gradient ascent on the isolated samples only
        start_loss = float(per_sample_losses(module, Xa[isolated], ya[isolated]).mean())
        self.warning_ = None
        if start_loss < SATURATED_LOSS:
            self.warning_ = (f"the isolated samples' mean loss is {start_loss:.2g} when unlearning starts "
                             f"(saturated): the ascent's gradient is about as small, so the unlearning cannot "
                             f"move the model and the backdoor stays")
            warnings.warn(self.warning_, PoisonlabWarning, stacklevel=3)
        # the official code unlearns with SGD (momentum 0.9, Nesterov, weight decay 1e-4) whatever
        # trained the model: Adam's per-coordinate steps make the unbounded ascent wreck the clean
        # classes too
        un_cfg = _replace(cfg, epochs=int(self.unlearning_epochs), lr=float(self.unlearning_lr), patience=None,
                          lr_schedule="constant", seed=cfg.seed + 4, optimizer="sgd",
                          momentum=UNLEARNING_MOMENTUM, weight_decay=UNLEARNING_WEIGHT_DECAY)
        histories["unlearning"] = train_module(module, Xa[isolated], ya[isolated], un_cfg, reset=False,
                                               loss_fn=lambda logits, t: -base_loss(logits, t),
                                               **{**common, "optimizer_factory": optimizer_factory or _nesterov_sgd})
        self.histories_ = histories
        self.unlearning_start_loss_ = start_loss
        self.isolation_losses_ = losses
        self.scores_ = -losses
        self.flags_ = isolated
        self.classifier_ = classifier_from(module, spec.n_classes)
        self.config_ = cfg


def _nesterov_sgd(params: list, config: Any) -> Any:
    """The official code's unlearning optimizer: SGD with ``config``'s rate, momentum and weight
    decay, Nesterov."""
    import torch

    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           nesterov=True)


def _replace(cfg: Any, **changes: Any) -> Any:
    """A copy of a TrainConfig with ``changes``."""
    out = copy.deepcopy(cfg)
    for key, value in changes.items():
        setattr(out, key, value)
    return out
