"""Behaviour drift between two versions of a model, on the same inputs.

Three measurements, each a pure function over predictions:

* **prediction flips** (:func:`flip_rates`): the fraction of inputs whose predicted label
  differs between the old and the new model, overall and per true class;
* **confidence shift** (:func:`ks_two_sample`): the two-sample Kolmogorov-Smirnov test
  (``scipy.stats.ks_2samp``, two-sided) between the old and the new model's confidence -- the
  probability of the predicted class -- overall and per true class, with its statistic ``D``
  (the largest gap between the two empirical CDFs) and p-value;
* **newly firing probes** (:func:`newly_firing`): canary probes that fire for the new model and
  did not for the old one (same family, any target), or that fire for a new target.

Threat model: a retrained model picked up a backdoor or a targeted poison from new data; the
defender holds the released version and trusted inputs. A backdoor barely moves clean behaviour,
so flips and confidence shifts on clean inputs are weak evidence on their own; newly firing
probes are the direct one.

Limits: the KS test assumes two independent samples; here both samples are the *same* inputs
through two models (paired), so its p-value is a descriptive yardstick, not an exact
significance level (pairing makes it conservative for a shift shared by every input, and it
ignores which inputs moved: flips do). Per class, it needs a few inputs of that class; classes
with fewer than two are reported with ``None``.

Examples
--------
>>> import numpy as np
>>> old = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
>>> new = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
>>> res = compare_predictions(old, new, np.array([0, 0, 1, 1]))
>>> res.flip_rate, res.class_flip_rates.tolist()
(0.25, [0.5, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..exceptions import DataError, InvalidParameterError

#: Significance level at which a KS test is reported as a shift.
ALPHA = 0.01


def flip_rates(pred_old: Any, pred_new: Any, y: Any, n_classes: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Fraction of inputs whose prediction changed, overall and per true class.

    Returns
    -------
    overall : float
    per_class : ndarray (K,)
        NaN for a class without inputs.
    counts : ndarray of int (K,)
        Inputs of each class.

    >>> flip_rates([0, 1, 1, 2], [0, 0, 1, 1], [0, 0, 1, 2], 3)[0]
    0.5
    """
    a, b, y = np.asarray(pred_old), np.asarray(pred_new), np.asarray(y)
    if not (a.shape == b.shape == y.shape) or a.ndim != 1:
        raise DataError(f"predictions and labels must be 1-D of one length; got {a.shape}, {b.shape}, {y.shape}")
    flips = a != b
    counts = np.array([int(np.sum(y == c)) for c in range(n_classes)])
    per = np.array([float(flips[y == c].mean()) if counts[c] else np.nan for c in range(n_classes)])
    return (float(flips.mean()) if len(flips) else float("nan")), per, counts


def ks_two_sample(a: Any, b: Any) -> tuple[float, float] | None:
    """Two-sided two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``, its default
    method: exact for small samples): ``(D, p_value)``; None when either sample has fewer than
    2 values.

    >>> D, p = ks_two_sample([1, 2, 3], [4, 5, 6])
    >>> D, round(p, 4)  # D = 1; exact p = 2 / C(6, 3)
    (1.0, 0.1)
    """
    from scipy.stats import ks_2samp

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if len(a) < 2 or len(b) < 2:
        return None
    res = ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def confidence(proba: Any) -> np.ndarray:
    """The probability of the predicted class of each input."""
    return np.asarray(proba, dtype=np.float64).max(axis=1)


def newly_firing(old: Any, new: Any) -> list[dict[str, Any]]:
    """Probes (of :class:`~poisonlab.monitoring.canaries.CanaryResult`\\ s of the same suite) that
    fire for ``new`` for a target they did not fire for with ``old``: family, target, both rates.
    """
    before = {(p.family, p.target) for p in old.probes if p.fires}
    rates_old = {p.family: p.rates for p in old.probes}
    out = []
    for p in new.probes:
        if p.fires and (p.family, p.target) not in before:
            r_old = rates_old.get(p.family)
            out.append({"family": p.family, "target": p.target, "rate_new": p.rate,
                        "rate_old": None if r_old is None or np.isnan(r_old[p.target]) else float(r_old[p.target])})
    return out


@dataclass
class DriftResult:
    """What changed between two model versions on the same inputs.

    Attributes
    ----------
    n : int
        Inputs compared.
    flip_rate : float
        Fraction whose predicted label changed.
    class_flip_rates : ndarray (K,)
        Per true class (NaN without inputs).
    class_counts : ndarray (K,)
    ks : dict or None
        Overall KS test of the confidences: ``{"statistic", "p_value", "shifted"}``
        (``shifted``: ``p_value < alpha``); None without probabilities.
    ks_per_class : list of dict or None
        The same per true class (None entries for classes with fewer than 2 inputs).
    newly_firing : list of dict
        :func:`newly_firing` (empty when no canary results were given).
    alpha : float
    classes : tuple of str
    """

    n: int
    flip_rate: float
    class_flip_rates: np.ndarray
    class_counts: np.ndarray
    ks: dict[str, Any] | None
    ks_per_class: list[dict[str, Any] | None] | None
    newly_firing: list[dict[str, Any]] = field(default_factory=list)
    alpha: float = ALPHA
    classes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "flip_rate": self.flip_rate, "alpha": self.alpha,
                "class_flip_rates": [None if np.isnan(r) else float(r) for r in self.class_flip_rates],
                "class_counts": [int(c) for c in self.class_counts], "ks": self.ks,
                "ks_per_class": self.ks_per_class, "newly_firing": list(self.newly_firing),
                "classes": list(self.classes)}


def _ks_entry(a: np.ndarray, b: np.ndarray, alpha: float) -> dict[str, Any] | None:
    res = ks_two_sample(a, b)
    if res is None:
        return None
    return {"statistic": res[0], "p_value": res[1], "shifted": bool(res[1] < alpha), "n": int(len(a))}


def compare_predictions(old: Any, new: Any, y: Any, *, n_classes: int | None = None, alpha: float = ALPHA,
                        classes: Sequence[str] | None = None) -> DriftResult:
    """Drift between two models' outputs on the same inputs (pure).

    Parameters
    ----------
    old, new : ndarray
        Probabilities ``(n, K)`` (flips and KS tests) or labels ``(n,)`` (flips only).
    y : ndarray (n,)
        True labels: flips and KS tests are also reported per true class.
    n_classes : int, optional
        Default: the probabilities' width, else ``max(labels) + 1``.
    alpha : float in (0, 1), default=0.01
    classes : sequence of str, optional

    Returns
    -------
    DriftResult
    """
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise InvalidParameterError(f"alpha must be in (0, 1); got {alpha!r}")
    old, new, y = np.asarray(old), np.asarray(new), np.asarray(y)
    if old.shape != new.shape:
        raise DataError(f"the two models' outputs differ in shape: {old.shape} vs {new.shape}")
    probs = old.ndim == 2
    if n_classes is None:
        n_classes = old.shape[1] if probs else int(max(old.max(initial=0), new.max(initial=0), y.max(initial=0))) + 1
    p_old, p_new = (old.argmax(1), new.argmax(1)) if probs else (old, new)
    overall, per, counts = flip_rates(p_old, p_new, y, n_classes)
    ks, ks_cls = None, None
    if probs:
        c_old, c_new = confidence(old), confidence(new)
        ks = _ks_entry(c_old, c_new, alpha)
        ks_cls = [_ks_entry(c_old[y == c], c_new[y == c], alpha) for c in range(n_classes)]
    return DriftResult(n=int(len(y)), flip_rate=overall, class_flip_rates=per, class_counts=counts, ks=ks,
                       ks_per_class=ks_cls, alpha=float(alpha),
                       classes=tuple(classes) if classes is not None else tuple(str(c) for c in range(n_classes)))


def drift_between(old_model: Any, new_model: Any, suite: Any, *, X_ref: Any = None, y_ref: Any = None,
                  alpha: float = ALPHA) -> tuple[DriftResult, Any, Any]:
    """Drift of ``new_model`` from ``old_model`` on a canary suite and an optional reference set.

    Both models run the suite (:func:`~poisonlab.monitoring.canaries.run_canaries`); flips and
    KS tests cover the canaries plus ``X_ref``/``y_ref`` when given; newly firing probes come
    from the two canary results.

    Returns
    -------
    (DriftResult, CanaryResult of the old model, CanaryResult of the new model)
    """
    from .canaries import _outputs, predictor, run_canaries

    old_res = run_canaries(old_model, suite)
    new_res = run_canaries(new_model, suite)
    K = suite.n_classes

    def outputs(res: Any, model: Any) -> np.ndarray:
        out = res.probabilities if res.probabilities is not None else res.predictions
        if X_ref is None:
            return out
        pred, proba = _outputs(predictor(model), X_ref, K)
        ref = proba if (proba is not None and res.probabilities is not None) else pred
        if out.ndim != ref.ndim:
            out = res.predictions
        return np.concatenate([out, ref])

    o, n = outputs(old_res, old_model), outputs(new_res, new_model)
    if o.ndim != n.ndim:  # one model gives labels only: compare labels
        o = o.argmax(1) if o.ndim == 2 else o
        n = n.argmax(1) if n.ndim == 2 else n
    y = np.asarray(suite.y) if X_ref is None else np.concatenate([np.asarray(suite.y), np.asarray(y_ref)])
    result = compare_predictions(o, n, y, n_classes=K, alpha=alpha, classes=suite.classes)
    result.newly_firing = newly_firing(old_res, new_res)
    return result, old_res, new_res
