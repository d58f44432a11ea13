"""Shared mechanics of clean-label backdoors: poison only target-class samples, keep labels."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...base import BackdoorAttack, PoisonResult, resolve_n_poison
from .._budget import perturbation_budget


class CleanLabelBackdoor(BackdoorAttack):
    """A backdoor whose poisons are target-class samples that keep their (correct) labels.

    The trigger is learnt as a feature of the target class because every training sample that
    carries it is labelled as the target. Subclasses implement :meth:`_apply_trigger` and may
    override :meth:`_prepare` (e.g. to make the chosen samples hard before the trigger goes on).
    ``poison_rate`` / ``n_poison`` count poisons out of the whole training set; they must fit in
    the target class.
    """

    family = "clean_label"
    target_mode: ClassVar[str] = "all-to-one"  # type: ignore[misc]

    #: The backdoor parameters less ``target_mode`` (always all-to-one).
    _parameter_constraints = {k: v for k, v in BackdoorAttack._parameter_constraints.items()
                              if k != "target_mode"}

    def _prepare(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, rng: np.random.Generator,
                 **needs) -> np.ndarray:
        """Inputs the trigger goes on (default: the chosen samples unchanged)."""
        return np.array(X[idx], copy=True)

    def _poison(self, X, y, *, n_classes, rng, **needs):
        self._check_target(n_classes)
        self._fit_trigger(X, rng)
        self.n_classes_ = n_classes
        candidates = np.flatnonzero(y == self.target)
        n = resolve_n_poison(self.poison_rate, self.n_poison, len(y), len(candidates),
                             candidates_desc=f"samples in target class {self.target}")
        idx = np.sort(rng.choice(candidates, size=n, replace=False))
        base = self._prepare(X, y, idx, rng, **needs)
        X_out = np.array(X, copy=True)
        X_out[idx] = self._apply_trigger(base)
        mask = np.zeros(len(y), dtype=bool)
        mask[idx] = True
        info = {"attack": type(self).__name__, "n_poison": n, "poison_rate": n / len(y),
                "fraction_of_target_class": n / len(candidates), "labels_changed": 0}
        if X.dtype != object:  # texts have no norms
            info.update(perturbation_budget(X_out[idx], X[idx]))
        return PoisonResult(X_out, np.array(y, copy=True), mask, idx, int(self.target), info)
