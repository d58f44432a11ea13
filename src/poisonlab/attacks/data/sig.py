"""SIG: a sinusoidal signal on target-class images, labels untouched."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval
from ...registry import register
from ..triggers import _spatial, add_signal, sinusoid
from ._clean_label import CleanLabelBackdoor


@register("attack", "sig")
class SIG(CleanLabelBackdoor):
    """SIG clean-label backdoor (Barni, Kallas & Tondi 2019, "A New Backdoor Attack in CNNs by
    Training Set Corruption Without Label Poisoning").

    A horizontal sinusoid ``v(i, j) = delta sin(2 pi j f / W)`` (eq. 5) is added to some
    *target-class* training images, whose labels stay correct; at test time the same signal
    (optionally stronger, ``test_delta``) added to any image steers it to the target.

    Threat model: the attacker adds a faint signal to a fraction of the target class and can
    add it to inputs at test time; no label is changed, so a human auditor sees correct labels.

    Parameters
    ----------
    target : int, default=0
    poison_rate : float, default=0.03
        Poisons out of the whole training set, drawn from the target class (0.03 is 30% of the
        target class of a balanced 10-class set; Barni et al. and BackdoorBench use 10-30%).
    n_poison : int, optional
        A count instead of a rate.
    delta : float > 0, default=20/255
        Signal amplitude in input units (20 on the 0-255 scale, for images in [0, 1]).
    test_delta : float > 0, optional
        Amplitude at test time; default ``delta`` (the paper also tests with 30/255).
    frequency : float > 0, default=6
        Periods across the image width.
    clip : (float, float), optional
        Value range to clip to; default the training inputs' minimum and maximum.
    random_state : int, Generator or None
        Chooses which target-class samples are poisoned.

    Limits
    ------
    Images only (the signal runs along the width). Clean-label attacks need the signal to be
    easier to learn than the target class itself; on easy data (MNIST) a larger ``delta`` or
    share of the class is needed than on CIFAR-10.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import SIG
    >>> X = np.full((40, 8, 8), 0.5); y = np.arange(40) % 4
    >>> res = SIG(target=1, n_poison=5, random_state=0).poison(X, y)
    >>> bool((res.y == y).all()), bool((y[res.indices] == 1).all())
    (True, True)
    """

    modalities = ("image",)
    min_ndim = 3

    _parameter_constraints = {
        **CleanLabelBackdoor._parameter_constraints,
        "delta": [Interval(numbers.Real, 0, None, closed="neither")],
        "test_delta": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "frequency": [Interval(numbers.Real, 0, None, closed="neither")],
        "clip": ["array-like", None],
        "channels_last": ["boolean"],
    }

    def __init__(self, *, target: int = 0, poison_rate: float | None = 0.03, n_poison: int | None = None,
                 delta: float = 20 / 255, test_delta: float | None = None, frequency: float = 6.0,
                 clip: Any = None, channels_last: bool = False, random_state: Any = None) -> None:
        self.target = target
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.delta = delta
        self.test_delta = test_delta
        self.frequency = frequency
        self.clip = clip
        self.channels_last = channels_last
        self.random_state = random_state

    def _fit_trigger(self, X, rng):
        self.clip_ = tuple(float(v) for v in self.clip) if self.clip is not None else (float(X.min()), float(X.max()))

    def _apply_trigger(self, X: np.ndarray, *, test: bool = False) -> np.ndarray:
        h, w = _spatial(X, self.channels_last)
        delta = self.test_delta if (test and self.test_delta is not None) else self.delta
        lo, hi = getattr(self, "clip_", None) or ((float(X.min()), float(X.max())) if self.clip is None else self.clip)
        return add_signal(X, sinusoid(h, w, delta, self.frequency), lo, hi, self.channels_last)
