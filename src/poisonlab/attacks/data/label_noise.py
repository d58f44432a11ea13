"""Synthetic label noise: the noise models label-issue detectors are measured against.

Not an attack class (nothing is targeted, no trigger): a pure function that corrupts labels the
way a known noise matrix does, so a detector's recall of the flipped labels can be measured
(R19, confident learning). The uniform counterpart is
:func:`~poisonlab.attacks.data.label_flip.flip_to_other_class`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import check_random_state, check_scalar


def class_conditional_flip(y: Any, rate: float, n_classes: int, random_state: Any = None) -> np.ndarray:
    """Flip ``rate`` of each class ``c`` to ``(c + 1) mod n_classes`` (a pair-flip noise matrix).

    Parameters
    ----------
    y : array of int, shape (n,)
        Clean labels in ``0 .. n_classes - 1``; never modified.
    rate : float in [0, 1]
        Share of each class flipped (``round(rate * class size)`` samples, drawn without
        replacement).
    n_classes : int >= 2
    random_state : None, int or numpy Generator
        A Generator is used as is (its stream advances), so successive calls with one
        Generator draw different samples.

    Returns
    -------
    ndarray
        The noisy labels (a copy); ``y_noisy != y`` marks the flipped samples.

    Examples
    --------
    >>> y = np.repeat(np.arange(3), 10)
    >>> y_noisy = class_conditional_flip(y, 0.2, 3, random_state=0)
    >>> [(int(c), int(np.sum((y == c) & (y_noisy != y)))) for c in range(3)]
    [(0, 2), (1, 2), (2, 2)]
    >>> sorted({(int(a), int(b)) for a, b in zip(y, y_noisy) if a != b})
    [(0, 1), (1, 2), (2, 0)]
    """
    check_scalar(rate, "rate", numbers.Real, low=0.0, high=1.0)
    check_scalar(n_classes, "n_classes", numbers.Integral, low=2)
    rng = check_random_state(random_state)
    y = np.asarray(y)
    y_noisy = y.copy()
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        pick = rng.choice(idx, int(round(rate * len(idx))), replace=False)
        y_noisy[pick] = (c + 1) % n_classes
    return y_noisy
