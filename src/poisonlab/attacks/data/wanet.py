"""WaNet: an imperceptible warping-based backdoor."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval
from ...base import BackdoorAttack, PoisonResult
from ...exceptions import NotFittedError
from ...registry import register
from .._budget import perturbation_budget
from ..triggers import _spatial, warp, warp_grid, warping_field


@register("attack", "wanet")
class WaNet(BackdoorAttack):
    """WaNet (Nguyen & Tran 2021, "WaNet -- Imperceptible Warping-based Backdoor Attack").

    The trigger is a smooth geometric warp: a random ``k x k`` displacement field, upsampled to
    the image and scaled by ``s / H`` (eq. 4), bends the image imperceptibly. Poisoned samples
    are warped and relabelled; *noise-mode* samples are warped with the field plus random
    per-pixel jitter and keep their labels, so the model learns to react to that exact warp only
    (which the paper shows defeats Neural Cleanse, STRIP and fine-pruning).

    Threat model: the attacker poisons ``n_poison`` training samples (plus
    ``cross_ratio * n_poison`` noise-mode samples with correct labels) and warps inputs at test
    time. The official code re-draws poisons every batch; this is the static, data-poisoning
    form (each poisoned training sample is warped once).

    Parameters
    ----------
    target, target_mode, poison_rate, n_poison
        As :class:`~poisonlab.attacks.data.BadNets` (``poison_rate`` is the paper's rho_a).
    k : int >= 2, default=4
        Control grid size of the warping field.
    strength : float > 0, default=0.5
        The paper's ``s``.
    cross_ratio : float >= 0, default=2.0
        Noise-mode samples per poison (the official code's ``cross_ratio``; rho_n = 2 rho_a).
    channels_last : bool, default=False
    random_state : int, Generator or None
        Draws the field, the poisoned and noise-mode samples and their jitter.

    Attributes
    ----------
    grid_ : ndarray (H, W, 2)
        The sampling grid of the trigger.

    Notes
    -----
    ``poison_mask`` marks both kinds of touched samples; the noise-mode ones are those whose
    label did not change (``res.poison_mask & (res.y == y)``).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import WaNet
    >>> X = np.random.default_rng(0).random((60, 12, 12)); y = np.arange(60) % 3
    >>> res = WaNet(target=0, n_poison=6, random_state=0).poison(X, y)
    >>> res.info["n_noise_mode"], int(res.poison_mask.sum()), int((res.y != y).sum())
    (12, 18, 6)
    """

    modalities = ("image",)
    min_ndim = 3

    _parameter_constraints = {
        **BackdoorAttack._parameter_constraints,
        "k": [Interval(numbers.Integral, 2, None, closed="left")],
        "strength": [Interval(numbers.Real, 0, None, closed="neither")],
        "cross_ratio": [Interval(numbers.Real, 0, None, closed="left")],
        "channels_last": ["boolean"],
    }

    def __init__(self, *, target: int = 0, target_mode: str = "all-to-one", poison_rate: float | None = 0.1,
                 n_poison: int | None = None, k: int = 4, strength: float = 0.5, cross_ratio: float = 2.0,
                 channels_last: bool = False, random_state: Any = None) -> None:
        self.target = target
        self.target_mode = target_mode
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.k = k
        self.strength = strength
        self.cross_ratio = cross_ratio
        self.channels_last = channels_last
        self.random_state = random_state

    def _fit_trigger(self, X, rng):
        h, w = _spatial(X, self.channels_last)
        self.grid_ = warp_grid(warping_field(self.k, h, w, rng), self.strength)

    def _check_trigger_ready(self):
        if getattr(self, "grid_", None) is None:
            raise NotFittedError("WaNet draws its warping field in poison(); call poison(...) first")

    def _apply_trigger(self, X: np.ndarray, *, test: bool = False) -> np.ndarray:
        return warp(X, self.grid_, self.channels_last)

    def _poison(self, X, y, *, n_classes, rng, **needs):
        res = super()._poison(X, y, n_classes=n_classes, rng=rng)
        n_noise = int(round(self.cross_ratio * res.n_poison))
        pool = np.flatnonzero(~res.poison_mask)
        n_noise = min(n_noise, len(pool))
        noise_idx = np.sort(rng.choice(pool, size=n_noise, replace=False))
        h, w = self.grid_.shape[:2]
        jitter = rng.uniform(-1.0, 1.0, size=(n_noise, h, w, 2)) / h
        X_out = np.array(res.X, copy=True)
        X_out[noise_idx] = warp(X[noise_idx], np.clip(self.grid_[None] + jitter, -1.0, 1.0), self.channels_last)
        mask = res.poison_mask.copy()
        mask[noise_idx] = True
        idx = np.flatnonzero(mask)
        meta = {**res.info, "n_noise_mode": n_noise, **perturbation_budget(X_out[idx], X[idx])}
        return PoisonResult(X_out, res.y, mask, idx, res.target, meta)
