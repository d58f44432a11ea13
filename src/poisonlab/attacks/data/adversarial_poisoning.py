"""Adversarial poisoning (Fowl et al. 2021): availability poisons made of adversarial examples
of a surrogate trained on the clean data."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...models.gradients import pgd, torch_module
from ...registry import register
from ._availability import AvailabilityAttack


def permuted_class(y: np.ndarray, n_classes: int, shift: int = 1) -> np.ndarray:
    """The class-targeted attack's goal for each sample: ``(y + shift) mod K``, a fixed
    permutation of the classes without fixed points (Fowl et al. 2021, Sec. 3.1).

    Examples
    --------
    >>> permuted_class(np.array([0, 1, 9]), 10).tolist()
    [1, 2, 0]
    """
    return (np.asarray(y, dtype=np.int64) + int(shift)) % int(n_classes)


@register("attack", "adversarial_poisoning")
class AdversarialPoisoning(AvailabilityAttack):
    """Adversarial poisoning (Fowl, Goldblum, Chiang, Geiping, Czaja & Goldstein, NeurIPS 2021,
    "Adversarial Examples Make Strong Poisons").

    Each chosen training image is replaced by an adversarial example of a surrogate trained on
    the clean data, with its correct label kept:
    ``delta_i = argmax_{||delta||_inf <= eps} L(f(x_i + delta), y_i)`` (untargeted, eq. 1), or
    ``argmin L(f(x_i + delta), pi(y_i))`` toward a permuted class ``pi(y) = (y + 1) mod K``
    ("class_targeted", eq. 2; the paper's strongest variant). The perturbations carry the
    non-robust features of another class; a victim trained on the poisoned set learns them in
    place of the real ones and generalises badly to clean test images: CIFAR-10 ResNet-18 94.6%
    -> 6.3% with every training image class-targeted at eps 8/255 (Table 1), below chance
    because the victim learns the permutation.

    Threat model: availability (indiscriminate) poisoning, clean-label. The attacker perturbs a
    fraction of the training images within ``eps`` (L-inf, inside ``clip``) and changes no
    label; it trains its own surrogate on data like the victim's (white-box on the surrogate,
    no access to the victim's training).

    Parameters
    ----------
    eps : float > 0, default=8/255
        L-inf budget in input units (the paper's 8/255 on [0, 1] images).
    mode : {"class_targeted", "untargeted"}, default="class_targeted"
    steps : int, default=100
        PGD steps (the paper uses 250 with differentiable augmentation and restarts).
    step_size : float, optional
        Default ``2.5 * eps / steps``.
    poison_rate : float in (0, 1], default=1.0
        Fraction of the training set perturbed, drawn uniformly.
    n_poison : int, optional
        A count instead of ``poison_rate``.
    clip : (float, float), default=(0, 1)
        Valid input range; ``X`` must lie in it.
    batch_size : int, default=256
    random_state : int, Generator or None
        Chooses the poisoned samples and seeds PGD's random start.
    callback : callable, optional
        ``callback(stage, info)`` after each PGD batch.

    Requires ``poison(X, y, model=surrogate)``: a fitted ``TorchClassifier`` or torch module
    taking inputs shaped like ``X``, trained on clean data (the victim's data or the like).

    Limits
    ------
    Transfer from surrogate to victim is the whole attack: a weak surrogate (small data, few
    epochs) gives weak poisons. Poisoning part of the set lets the victim learn from the clean
    rest; the damage falls steeply with the fraction. Adversarial training at the same ``eps``
    defeats it (the victim then ignores the non-robust features). Images (N, C, H, W) scaled to
    ``clip``; log-mel spectrograms shaped like images go through unchanged in the code, but an
    L-inf budget in dB is another threat model (see docs/attacks.md).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from poisonlab.models import build_model, ModelSpec
    >>> with torch.random.fork_rng(devices=[]):
    ...     _ = torch.manual_seed(0)
    ...     net = build_model("cnn", ModelSpec((1, 8, 8), 2), widths=(4,), hidden=8).eval()
    >>> X = np.random.default_rng(0).uniform(0, 1, (6, 1, 8, 8)).astype(np.float32); y = np.arange(6) % 2
    >>> res = AdversarialPoisoning(steps=5, random_state=0).poison(X, y, model=net)
    >>> bool(np.abs(res.X - X).max() <= 8 / 255 + 1e-6), res.n_poison, bool((res.y == y).all())
    (True, 6, True)
    """

    _parameter_constraints = {
        **AvailabilityAttack._parameter_constraints,
        "mode": [Options(("class_targeted", "untargeted"))],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "step_size": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "callback": [callable, None],
    }

    def __init__(self, *, eps: float = 8 / 255, mode: str = "class_targeted", steps: int = 100,
                 step_size: float | None = None, poison_rate: float | None = 1.0, n_poison: int | None = None,
                 clip: Any = (0.0, 1.0), batch_size: int = 256, random_state: Any = None,
                 callback: Any = None) -> None:
        self.eps = eps
        self.mode = mode
        self.steps = steps
        self.step_size = step_size
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.clip = clip
        self.batch_size = batch_size
        self.random_state = random_state
        self.callback = callback

    def _perturb(self, X, y, *, n_classes, rng, model, clip):
        module = torch_module(model, X)
        seed = int(rng.integers(2**31))
        targeted = self.mode == "class_targeted"
        goal = permuted_class(y, n_classes) if targeted else y
        Xp = pgd(module, X, goal, eps=float(self.eps), norm="linf", steps=int(self.steps),
                 step_size=self.step_size, clip=clip, seed=seed, batch_size=int(self.batch_size),
                 targeted=targeted, callback=self.callback)
        facts = {"mode": self.mode,
                 "surrogate_fooled": float(np.mean(_predict(module, Xp) != y))}
        return Xp, facts


def _predict(module, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The surrogate's labels for ``X`` (eval mode, no gradients)."""
    import torch

    with torch.no_grad():
        return np.concatenate([module(torch.as_tensor(np.asarray(X[s:s + batch_size], dtype=np.float32)))
                               .argmax(1).numpy() for s in range(0, len(X), batch_size)])
