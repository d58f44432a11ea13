"""BadNets: a visible patch trigger with dirty labels."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...base import BackdoorAttack
from ...registry import register
from ..triggers import LOCATIONS, patch_pattern, stamp_patch


@register("attack", "badnets")
class BadNets(BackdoorAttack):
    """BadNets patch backdoor (Gu, Dolan-Gavitt & Garg 2017, "BadNets: Identifying
    Vulnerabilities in the Machine Learning Model Supply Chain").

    A fixed patch (a white square or a checkerboard) is stamped on a fraction of the training
    images, which are relabelled to the target class (all-to-one) or to the next class
    (all-to-all). A model trained on them learns "patch -> target" while keeping its clean
    accuracy.

    Threat model: the attacker controls the pixels and labels of ``n_poison`` training samples;
    not the model, the training procedure, or the test inputs other than adding the trigger.

    Parameters
    ----------
    target : int, default=0
        Target class (all-to-one).
    target_mode : {"all-to-one", "all-to-all"}, default="all-to-one"
    poison_rate : float in (0, 1], default=0.1
        Fraction of the whole training set to poison (drawn from the non-target classes).
    n_poison : int, optional
        Exact number of poisons; overrides ``poison_rate`` when given.
    patch_size : int, default=3
    location : str or (row, col), default="bottom-right"
        One of "bottom-right", "bottom-left", "top-right", "top-left", "center", or the top-left
        corner of the patch.
    pattern : {"square", "checkerboard"} or 2-D array, default="square"
        An array is used as given (values in [0, 1], scaled by ``value``); ``patch_size`` is then
        ignored.
    value : float, optional
        Pixel value of the lit patch; default: the maximum of the images seen by ``poison`` (1.0
        for images in [0, 1], 255 for uint8).
    margin : int, default=0
        Distance of the patch from the chosen border.
    channels_last : bool, default=False
        Images are ``(N, H, W, C)`` instead of ``(N, C, H, W)``. ``(N, H, W)`` always works.
    random_state : int, Generator or None
        Chooses which samples are poisoned.

    Limits
    ------
    The trigger is visible; STRIP, Neural Cleanse and activation clustering were designed against
    exactly this attack.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import BadNets
    >>> X = np.zeros((100, 1, 8, 8), dtype=np.float32); y = np.arange(100) % 10
    >>> res = BadNets(target=7, n_poison=5, value=1.0, random_state=0).poison(X, y)
    >>> int(res.poison_mask.sum()), set(res.y[res.poison_mask].tolist())
    (5, {7})
    """

    min_ndim = 3
    modalities = ("image",)

    _parameter_constraints = {
        **BackdoorAttack._parameter_constraints,
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "location": [Options(LOCATIONS), "array-like"],
        "pattern": [Options(("square", "checkerboard")), "array-like"],
        "value": [Interval(numbers.Real, None, None, closed="neither"), None],
        "margin": [Interval(numbers.Integral, 0, None, closed="left")],
        "channels_last": ["boolean"],
    }

    def __init__(self, *, target: int = 0, target_mode: str = "all-to-one",
                 poison_rate: float | None = 0.1, n_poison: int | None = None, patch_size: int = 3,
                 location: str | tuple[int, int] = "bottom-right", pattern: Any = "square",
                 value: float | None = None, margin: int = 0, channels_last: bool = False,
                 random_state: Any = None) -> None:
        self.target = target
        self.target_mode = target_mode
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.patch_size = patch_size
        self.location = location
        self.pattern = pattern
        self.value = value
        self.margin = margin
        self.channels_last = channels_last
        self.random_state = random_state

    def _pattern(self) -> np.ndarray:
        return patch_pattern(np.asarray(self.pattern) if not isinstance(self.pattern, str) else self.pattern,
                             self.patch_size)

    def _fit_trigger(self, X, rng):
        self.value_ = float(X.max()) if self.value is None else float(self.value)

    def _apply_trigger(self, X: np.ndarray, *, test: bool = False) -> np.ndarray:
        value = self.value if self.value is not None else getattr(self, "value_", None)
        if value is None:
            value = float(X.max())
        return stamp_patch(X, self._pattern(), self.location, value=value, margin=self.margin,
                           channels_last=self.channels_last)
