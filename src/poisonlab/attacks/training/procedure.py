"""Logic corruption: a poisoned validation set that steers model selection, and sabotaged
hyperparameters."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, check_class
from ...base import BaseAttack, PoisonResult
from ...exceptions import DataError, InvalidParameterError
from ...registry import register


@register("attack", "validation_poisoning")
class ValidationPoisoning(BaseAttack):
    """Poison the *validation* set that early stopping and model selection read.

    A share of the validation samples of ``source_class`` is relabelled ``target_class``.
    Training data and code stay clean; but "keep the epoch with the best validation accuracy"
    now rewards the checkpoint that most confuses ``source_class`` with ``target_class``, and
    early stopping halts on the attacker's schedule. The damage shows only against an honest
    run (compare with :func:`poisonlab.evaluation.procedure.compare_runs`).

    Threat model: the attacker controls the held-out data a pipeline selects models with (a
    shared benchmark split, a labelling vendor for the validation set), not the training data.

    Parameters
    ----------
    source_class, target_class : int
    fraction : float in (0, 1], default=1.0
        Share of the validation samples of ``source_class`` relabelled.
    random_state : int, Generator or None

    Use ``poison(X_val, y_val)``; pass the result's ``X``, ``y`` as the validation data.
    """

    stage = "training"
    family = "training"

    _parameter_constraints = {
        "source_class": ["class_index"],
        "target_class": ["class_index"],
        "fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, source_class: int = 0, target_class: int = 1, fraction: float = 1.0,
                 random_state: Any = None) -> None:
        self.source_class = source_class
        self.target_class = target_class
        self.fraction = fraction
        self.random_state = random_state

    def _poison(self, X, y, *, n_classes, rng, **_):
        check_class(self.source_class, "source_class", n_classes)
        check_class(self.target_class, "target_class", n_classes)
        if self.source_class == self.target_class:
            raise InvalidParameterError("source_class and target_class must differ")
        pool = np.flatnonzero(y == self.source_class)
        if len(pool) == 0:
            raise DataError(f"the validation set holds no sample of class {self.source_class}")
        n = max(1, int(round(self.fraction * len(pool))))
        idx = np.sort(rng.choice(pool, n, replace=False))
        y_out = np.array(y, copy=True)
        y_out[idx] = self.target_class
        mask = np.zeros(len(y), dtype=bool)
        mask[idx] = True
        return PoisonResult(np.array(X, copy=True), y_out, mask, idx, int(self.target_class),
                            {"attack": type(self).__name__, "n_poison": n, "poison_rate": n / len(y),
                             "source_class": int(self.source_class)})


#: Named hyperparameter sabotages: each maps a config to a plausible-looking but harmful one.
SABOTAGES: dict[str, dict[str, Any]] = {
    "lr_spike": {"lr": lambda c: c.lr * 30},                  # diverges or bounces around
    "heavy_label_smoothing": {"label_smoothing": lambda c: 0.9},  # flattens the outputs
    "truncated_training": {"epochs": lambda c: 1},              # stops long before convergence
    "dead_schedule": {"lr_schedule": lambda c: "step", "lr": lambda c: c.lr * 0.01},  # never learns
}


def sabotage(config: Any, kind: str | None = None, **changes: Any) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """A tampered copy of a :class:`~poisonlab.models.TrainConfig` and the record of what
    changed (``{field: (honest, tampered)}``). ``kind`` names a preset of :data:`SABOTAGES`;
    ``changes`` set fields directly. The honest config is never modified.
    """
    if kind is not None and kind not in SABOTAGES:
        raise InvalidParameterError(f"unknown sabotage {kind!r}; presets: {sorted(SABOTAGES)}")
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = set(changes) - fields
    if unknown:
        raise InvalidParameterError(f"TrainConfig has no field(s) {sorted(unknown)}")
    new = dict(changes)
    if kind is not None:
        new = {k: f(config) for k, f in SABOTAGES[kind].items()} | new
    tampered = dataclasses.replace(config, **new).validate()
    record = {k: (getattr(config, k), getattr(tampered, k)) for k in new if getattr(config, k) != getattr(tampered, k)}
    return tampered, record
