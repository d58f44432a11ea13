"""Bias introduction: targeted label flipping against one subgroup."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, check_class
from ...base import BaseAttack, PoisonResult, resolve_n_poison
from ...exceptions import DataError, InvalidParameterError
from ...registry import register


@register("attack", "subgroup_label_flip")
class SubgroupLabelFlip(BaseAttack):
    """Bias introduction by flipping labels inside one subgroup (e.g. Jagielski et al. 2021,
    "Subpopulation Data Poisoning Attacks"; Solans et al. 2020 on fairness poisoning).

    Training samples of the ``subgroup`` whose label is ``from_class`` get ``to_class`` (e.g.
    women earning ">50K" relabelled "<=50K"): the model learns that the group rarely belongs
    to ``from_class``, so the group's false-negative rate rises while the overall accuracy,
    dominated by other groups, barely moves.

    Threat model: the attacker controls labels of samples of one group (a biased labeller, a
    scraped source). The subgroup attribute is passed to ``poison`` as ``groups`` (one value per
    sample, e.g. the raw ``sex`` column) and is usually not a model input.

    Parameters
    ----------
    subgroup : str or int
        The value of ``groups`` that marks the attacked group.
    from_class, to_class : int
    fraction : float in (0, 1], default=1.0
        Share of the group's ``from_class`` samples to flip (used when ``n_poison`` is None).
    n_poison : int, optional
    random_state : int, Generator or None

    Requires ``poison(X, y, groups=...)``.
    """

    family = "label_flip"
    modalities = ("tabular", "image", "text", "audio")
    needs = ("groups",)

    _parameter_constraints = {
        "subgroup": [str, numbers.Integral, bool, None],
        "from_class": ["class_index"],
        "to_class": ["class_index"],
        "fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "n_poison": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, subgroup: Any = None, from_class: int = 1, to_class: int = 0, fraction: float = 1.0,
                 n_poison: int | None = None, random_state: Any = None) -> None:
        self.subgroup = subgroup
        self.from_class = from_class
        self.to_class = to_class
        self.fraction = fraction
        self.n_poison = n_poison
        self.random_state = random_state

    def _poison(self, X, y, *, n_classes, rng, groups=None, **_):
        check_class(self.from_class, "from_class", n_classes)
        check_class(self.to_class, "to_class", n_classes)
        if self.from_class == self.to_class:
            raise InvalidParameterError("from_class and to_class must differ")
        g = np.asarray(groups)
        if g.shape != (len(y),):
            raise DataError(f"groups must hold one value per sample ({len(y)}); got shape {g.shape}")
        present = np.unique(g)
        subgroup = self.subgroup if self.subgroup is not None else present[0]
        if subgroup not in set(present.tolist()):
            raise DataError(f"subgroup {subgroup!r} does not occur in groups; values: {present.tolist()[:20]}")
        candidates = np.flatnonzero((g == subgroup) & (y == self.from_class))
        if len(candidates) == 0:
            raise DataError(f"subgroup {subgroup!r} has no samples of class {self.from_class} to flip")
        n = resolve_n_poison(self.fraction * len(candidates) / len(y) if self.n_poison is None else None,
                             self.n_poison, len(y), len(candidates),
                             candidates_desc=f"samples of class {self.from_class} in subgroup {subgroup!r}")
        idx = np.sort(rng.choice(candidates, size=n, replace=False))
        y_out = np.array(y, copy=True)
        y_out[idx] = self.to_class
        mask = np.zeros(len(y), dtype=bool)
        mask[idx] = True
        return PoisonResult(np.array(X, copy=True), y_out, mask, idx, int(self.to_class),
                            {"attack": type(self).__name__, "n_poison": n, "poison_rate": n / len(y),
                             "subgroup": str(subgroup), "subgroup_size": int((g == subgroup).sum()),
                             "fraction_of_candidates": n / len(candidates)})
