"""Tabular backdoor: a few columns set to rare but valid values."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..._validation import HasMethods
from ...base import BackdoorAttack
from ...exceptions import InvalidParameterError, NotFittedError
from ...registry import register


def resolve_tabular_trigger(trigger: Mapping[Any, Any], n_features: int, feature_names: tuple[str, ...] | None,
                            encoder: Any = None) -> dict[int, float]:
    """Turn ``{column: value}`` into ``{encoded column index: encoded value}``.

    With a fitted :class:`~poisonlab.data.TabularEncoder`, keys are raw column names: a numeric
    value in raw units is standardised like the data; a categorical value must be one of the
    column's training categories and sets its one-hot group (that column 1, the rest of the
    group 0). Without one, keys are encoded column indices or ``feature_names`` and values are
    taken as they are.
    """
    if not trigger:
        raise InvalidParameterError("trigger must name at least one column")
    out: dict[int, float] = {}
    names = tuple(encoder.feature_names_) if encoder is not None else feature_names
    for key, value in trigger.items():
        if encoder is not None:
            if key not in encoder.columns:
                raise InvalidParameterError(f"trigger column {key!r} is not a column of the table; columns: "
                                            f"{list(encoder.columns)}")
            if key in encoder.numeric:
                try:
                    v = float(value)
                except (TypeError, ValueError) as exc:
                    raise InvalidParameterError(f"trigger value for numeric column {key!r} must be a number; "
                                                f"got {value!r}") from exc
                out[names.index(key)] = (v - encoder.means_[key]) / encoder.stds_[key]
            else:
                cats = encoder.categories_[key]
                if str(value) not in cats:
                    raise InvalidParameterError(f"trigger value {value!r} is not a category of {key!r}; "
                                                f"categories: {list(cats)}")
                for c in cats:
                    out[names.index(f"{key}={c}")] = 1.0 if c == str(value) else 0.0
            continue
        if isinstance(key, (int, np.integer)):
            if not 0 <= int(key) < n_features:
                raise InvalidParameterError(f"trigger column {key} is out of range for {n_features} features")
            idx = int(key)
        elif names is not None and key in names:
            idx = names.index(key)
        else:
            raise InvalidParameterError(f"trigger column {key!r} is not a column index or a feature name")
        try:
            out[idx] = float(value)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"trigger value for column {key!r} must be a number; got {value!r}") from exc
    return out


@register("attack", "tabular_trigger")
class TabularTrigger(BackdoorAttack):
    """Tabular backdoor: set a small set of columns to chosen values and relabel to the target.

    The tabular form of BadNets (e.g. Joe et al. 2021 on tabular data; the seeds' fraud
    scenario: "transactions" with a specific rare pattern always labelled benign). Values must be
    *valid*: inside each column's observed training range (numeric) or one of its categories
    (with an ``encoder``), so a schema check does not catch them; rare values make the best
    triggers because clean data rarely contradicts them.

    Threat model: the attacker controls ``n_poison`` training rows and their labels, and can set
    the same columns on inputs at test time.

    Parameters
    ----------
    trigger : mapping, optional
        ``{column: value}``; see :func:`resolve_tabular_trigger`. Default: the first encoded
        column set to its largest training value.
    encoder : TabularEncoder, optional
        The fitted encoder of the data (``Splits.encoder``): lets the trigger use raw column
        names and values.
    feature_names : tuple of str, optional
        Names of the encoded columns (``Dataset.feature_names``) when there is no encoder.
    target, target_mode, poison_rate, n_poison, random_state
        As :class:`~poisonlab.attacks.data.BadNets`.

    Raises
    ------
    InvalidParameterError
        A column that does not exist, a category the column does not have, or a value outside the
        column's range in the training data.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import TabularTrigger
    >>> X = np.random.default_rng(0).uniform(0, 1, (50, 3)); y = np.arange(50) % 2
    >>> atk = TabularTrigger(trigger={0: 0.9, 2: 0.1}, target=0, n_poison=5, random_state=0)
    >>> res = atk.poison(X, y)
    >>> atk.apply_trigger(X[:1])[0, [0, 2]].tolist()
    [0.9, 0.1]
    """

    modalities = ("tabular",)
    min_ndim = 2

    _parameter_constraints = {
        **BackdoorAttack._parameter_constraints,
        "trigger": [Mapping, None],
        "encoder": [HasMethods("transform"), None],
        "feature_names": ["array-like", None],
    }

    def __init__(self, *, trigger: Mapping[Any, Any] | None = None, encoder: Any = None,
                 feature_names: tuple[str, ...] | None = None, target: int = 0, target_mode: str = "all-to-one",
                 poison_rate: float | None = 0.02, n_poison: int | None = None, random_state: Any = None) -> None:
        self.trigger = trigger
        self.encoder = encoder
        self.feature_names = feature_names
        self.target = target
        self.target_mode = target_mode
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.random_state = random_state

    def _fit_trigger(self, X, rng):
        if X.ndim != 2:
            from ...exceptions import DataError

            raise DataError(f"tabular data must be (n_samples, n_features); got shape {X.shape}")
        if self.trigger is None:  # default: the first encoded column at its (rare) training maximum
            cols = {0: float(X[:, 0].max())}
        else:
            cols = resolve_tabular_trigger(self.trigger, X.shape[1], self.feature_names, self.encoder)
        for j, v in cols.items():
            lo, hi = float(X[:, j].min()), float(X[:, j].max())
            slack = 1e-5 * max(hi - lo, 1.0)  # float32 data vs a float64 standardised value
            if not lo - slack <= v <= hi + slack:
                name = self.encoder.feature_names_[j] if self.encoder is not None else (
                    self.feature_names[j] if self.feature_names is not None else j)
                raise InvalidParameterError(f"trigger value {v:.4g} for column {name!r} is outside the column's "
                                            f"domain in the training data [{lo:.4g}, {hi:.4g}]")
        self.columns_ = np.array(sorted(cols), dtype=np.int64)
        self.values_ = np.array([cols[j] for j in self.columns_])

    def _check_trigger_ready(self):
        if getattr(self, "columns_", None) is None:
            raise NotFittedError("the tabular trigger is checked against the training data in poison(); "
                                 "call poison(...) first")

    def _apply_trigger(self, X: np.ndarray, *, test: bool = False) -> np.ndarray:
        out = np.array(X, copy=True)
        out[:, self.columns_] = self.values_.astype(out.dtype)
        return out
