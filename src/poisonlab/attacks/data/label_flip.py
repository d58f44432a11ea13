"""Label flipping: the attacker changes labels, never inputs."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, check_class
from ...base import N_POISON, POISON_RATE, BaseAttack, PoisonResult, resolve_n_poison
from ...exceptions import InvalidParameterError
from ...registry import register


def flip_to_other_class(y: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Each label replaced by a class drawn uniformly from the ``n_classes - 1`` others.

    Vectorised: draw an offset in ``1 .. K-1`` and add it modulo ``K``.
    """
    offsets = rng.integers(1, n_classes, size=y.shape)
    return (y + offsets) % n_classes


def _result(X, y, idx, new_labels, target, info):
    y_out = np.array(y, copy=True)
    y_out[idx] = new_labels
    mask = np.zeros(len(y), dtype=bool)
    mask[idx] = True
    return PoisonResult(np.array(X, copy=True), y_out, mask, idx, target, info)


@register("attack", "random_label_flip")
class RandomLabelFlip(BaseAttack):
    """Random label flipping: a random subset of labels set to other classes, uniformly.

    The classic "label noise" poisoning model (e.g. Biggio, Nelson & Laskov 2011, "Support Vector
    Machines Under Adversarial Label Noise", the random baseline). It is untargeted: it lowers
    clean accuracy and is what label-issue detectors (confident learning) are designed for.

    Threat model: the attacker controls the labels of ``n_poison`` training samples, chosen at
    random (not adversarially: see the adversarial flips of a later module for that).

    Parameters
    ----------
    poison_rate : float in (0, 1], default=0.1
        Fraction of the training set whose label is flipped.
    n_poison : int, optional
        Exact number of flips; overrides ``poison_rate`` when given.
    n_classes : int, optional
        Number of classes; default ``max(y) + 1``. Give it when a class may be absent from ``y``.
    random_state : int, Generator or None

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import RandomLabelFlip
    >>> y = np.arange(100) % 4
    >>> res = RandomLabelFlip(poison_rate=0.2, random_state=0).poison(np.zeros((100, 3)), y)
    >>> int((res.y != y).sum())
    20
    """

    family = "label_flip"

    _parameter_constraints = {
        "poison_rate": POISON_RATE,
        "n_poison": N_POISON,
        "n_classes": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, poison_rate: float | None = 0.1, n_poison: int | None = None,
                 n_classes: int | None = None, random_state: Any = None) -> None:
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.n_classes = n_classes
        self.random_state = random_state

    def _poison(self, X, y, *, n_classes, rng, **needs):
        n = resolve_n_poison(self.poison_rate, self.n_poison, len(y), len(y))
        idx = np.sort(rng.choice(len(y), size=n, replace=False))
        new = flip_to_other_class(y[idx], n_classes, rng)
        return _result(X, y, idx, new, None, {"attack": "RandomLabelFlip", "n_poison": n,
                                              "poison_rate": n / len(y)})


@register("attack", "targeted_label_flip")
class TargetedLabelFlip(BaseAttack):
    """Class-to-class label flipping: samples of ``source`` relabelled as ``target``.

    The targeted flip of e.g. Tolpegin et al. 2020 ("Data Poisoning Attacks Against Federated
    Learning Systems", 1 -> 7 and similar pairs): it raises the source class's error into the
    target class while leaving the other classes alone.

    Threat model: the attacker controls the labels of ``n_poison`` samples of the source class.

    Parameters
    ----------
    source, target : int
        Classes to flip from and to; must differ and exist.
    poison_rate : float in (0, 1], default=0.5
        Fraction *of the source class* to flip (not of the whole set, unlike backdoors).
    n_poison : int, optional
        Exact number of flips; overrides ``poison_rate`` when given.
    n_classes : int, optional
    random_state : int, Generator or None

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import TargetedLabelFlip
    >>> y = np.array([0, 1, 1, 1, 1, 2])
    >>> TargetedLabelFlip(source=1, target=2, n_poison=2, random_state=0).poison(np.zeros((6, 1)), y).y.tolist().count(2)
    3
    """

    family = "label_flip"

    _parameter_constraints = {
        "source": ["class_index"],
        "target": ["class_index"],
        "poison_rate": POISON_RATE,
        "n_poison": N_POISON,
        "n_classes": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, source: int = 1, target: int = 0, poison_rate: float | None = 0.5,
                 n_poison: int | None = None, n_classes: int | None = None,
                 random_state: Any = None) -> None:
        self.source = source
        self.target = target
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.n_classes = n_classes
        self.random_state = random_state

    def _poison(self, X, y, *, n_classes, rng, **needs):
        source = check_class(self.source, "source", n_classes)
        target = check_class(self.target, "target", n_classes)
        if source == target:
            raise InvalidParameterError(f"source and target must differ; both are {source}")
        pool = np.flatnonzero(y == source)
        if pool.size == 0:
            raise InvalidParameterError(f"source class {source} has no samples to flip")
        n = resolve_n_poison(self.poison_rate, self.n_poison, pool.size, pool.size,
                             candidates_desc=f"samples of source class {source}")
        idx = np.sort(rng.choice(pool, size=n, replace=False))
        return _result(X, y, idx, np.full(n, target), target,
                       {"attack": "TargetedLabelFlip", "n_poison": n, "source": source,
                        "fraction_of_source": n / pool.size})
