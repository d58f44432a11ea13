"""The contracts every attack, detector and aggregator follows (see ``shared/DESIGN.md``).

* :class:`BaseAttack` -- hyperparameters in ``__init__``; ``poison(X, y, **needs)`` returns a frozen
  :class:`PoisonResult` and never modifies its inputs. :class:`BackdoorAttack` adds
  ``apply_trigger(X)`` for test time.
* :class:`BaseDetector` -- ``fit(...)`` returns ``self`` and sets ``scores_`` (higher = more
  suspicious), ``threshold_`` and ``flags_ = scores_ > threshold_``. The threshold comes from exactly
  one of ``contamination`` or ``false_positive_rate``; one place (:meth:`BaseDetector._calibrate`)
  turns scores into a threshold for every detector.
* :class:`BaseAggregator` -- ``aggregate(updates, weights=None, **context)`` returns the aggregated
  update and records which clients were excluded or down-weighted.
* :class:`BaseUpdateAttack` -- ``craft(own_updates, *, honest_updates=None)`` returns malicious
  clients' updates (federated model poisoning), with the attacker's knowledge declared.

Every class declares its hyperparameters' constraints as data (``_parameter_constraints``, the
vocabulary of :mod:`poisonlab._validation`); :meth:`Params._validate_params` checks them once, at
the start of ``poison``, ``fit`` and ``aggregate``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

import numpy as np

from ._validation import (
    Interval,
    Options,
    check_array,
    check_class,
    check_is_fitted,
    check_labels,
    check_random_state,
    check_scalar,
    infer_n_classes,
    validate_params,
)
from .exceptions import AssumptionError, DataError, InvalidParameterError


# --- parameters ------------------------------------------------------------------------------

class Params:
    """``get_params`` / ``set_params`` / ``clone`` from the keyword-only ``__init__`` signature,
    and the check of the declared parameter constraints.

    Subclasses store every ``__init__`` argument under the same name and do nothing else there,
    and declare every one of them in ``_parameter_constraints`` (``{"name": [constraint, ...]}``,
    the vocabulary of :mod:`poisonlab._validation`: a value is valid when one constraint of its
    list accepts it).
    """

    #: ``{parameter: [constraint, ...]}`` for every ``__init__`` parameter.
    _parameter_constraints: ClassVar[dict[str, list]] = {}

    def _validate_params(self) -> None:
        """Check every declared parameter; raise InvalidParameterError naming the first bad one
        (``"BadNets.poison_rate must be in (0, 1] or None; got 1.5"``)."""
        validate_params(self.get_params(), self._parameter_constraints, type(self).__name__)

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "Params":
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise InvalidParameterError(
                    f"{type(self).__name__} has no parameter {key!r}; valid: {sorted(valid)}"
                )
            setattr(self, key, value)
        return self

    def clone(self) -> "Params":
        """A new unfitted object with deep copies of the same parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = []
        for name, value in self.get_params().items():
            default = sig.parameters[name].default
            same = default is not inspect.Parameter.empty and _same(value, default)
            if not same:
                shown.append(f"{name}={_short_repr(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - comparing arbitrary user objects
        return False


def _short_repr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"<array {value.shape} {value.dtype}>"
    return repr(value)


def clone(obj: Params) -> Params:
    """A new unfitted copy of an attack, detector or aggregator with the same parameters."""
    return obj.clone()


# --- attacks ---------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PoisonResult:
    """What an attack returns: the poisoned training set and the ground truth of what it did.

    Attributes
    ----------
    X, y : ndarray
        The poisoned training inputs and labels, same length and order as the clean ones given to
        ``poison`` (attacks that add samples append them at the end).
    poison_mask : ndarray of bool
        True where the sample was altered or added by the attacker: the ground truth every
        detection metric needs.
    indices : ndarray of int
        ``np.flatnonzero(poison_mask)``.
    target : int or None
        The attacker's target class for all-to-one attacks; None for untargeted or all-to-all.
    info : mapping
        Attack-specific facts a user needs to judge it (budget used, classes touched, ...).
    """

    X: np.ndarray
    y: np.ndarray
    poison_mask: np.ndarray
    indices: np.ndarray
    target: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.y)
        if len(self.X) != n or len(self.poison_mask) != n:
            raise DataError(
                f"PoisonResult arrays disagree in length: X={len(self.X)}, y={n}, "
                f"poison_mask={len(self.poison_mask)}"
            )
        if self.poison_mask.dtype != bool:
            raise DataError(f"poison_mask must be boolean; got {self.poison_mask.dtype}")
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    @property
    def n_poison(self) -> int:
        return int(self.poison_mask.sum())


def resolve_n_poison(poison_rate: float | None, n_poison: int | None, n_total: int,
                     n_candidates: int, *, candidates_desc: str = "candidate samples") -> int:
    """How many samples to poison: ``n_poison`` if given, else ``round(poison_rate * n_total)``.

    ``poison_rate`` is a fraction of the whole training set (R1: 600 of 50,000 = 1.2%). The number
    must fit in the pool of samples the attack may touch; we refuse rather than poison fewer.
    """
    if n_poison is not None:
        check_scalar(n_poison, "n_poison", numbers.Integral, low=1)
        n = int(n_poison)
        asked = f"n_poison={n_poison!r}"
    elif poison_rate is None:
        raise InvalidParameterError("give poison_rate (a fraction in (0, 1]) or n_poison (a count)")
    else:
        check_scalar(poison_rate, "poison_rate", numbers.Real, low=0.0, high=1.0, low_inclusive=False)
        n = int(round(poison_rate * n_total))
        if n < 1:
            raise InvalidParameterError(
                f"poison_rate={poison_rate!r} of {n_total} samples rounds to 0 poisons; "
                f"use a larger rate or n_poison"
            )
        asked = f"poison_rate={poison_rate!r} asks for {n} poisons"
    if n > n_candidates:
        raise InvalidParameterError(f"{asked} but there are only {n_candidates} {candidates_desc}")
    return n


#: Declared constraints of the hyperparameters most attacks share.
POISON_RATE = [Interval(numbers.Real, 0, 1, closed="right"), None]
N_POISON = [Interval(numbers.Integral, 1, None, closed="left"), None]


class BaseAttack(Params, ABC):
    """Base class of every poisoning attack.

    Subclasses implement :meth:`_poison`. :meth:`poison` checks the declared parameters,
    validates ``X`` and ``y``, resolves ``random_state`` into one generator, hands the subclass
    read-only views (so an attack that would modify the user's arrays fails loudly), and checks
    the result.
    """

    #: Pipeline stage the attack works at: "data" (the training set), "training" (the
    #: procedure) or "federated" (client updates).
    stage: ClassVar[str] = "data"
    #: What the attack alters: "sample" (training samples) or "client" (federated updates).
    unit: ClassVar[str] = "sample"
    #: Short family name: "label_flip", "backdoor", "clean_label", ...
    family: ClassVar[str] = "attack"
    #: Modalities the attack applies to.
    modalities: ClassVar[tuple[str, ...]] = ("image", "tabular", "text", "audio")
    #: Keyword-only objects ``poison`` needs besides X and y (e.g. ``("model",)``).
    needs: ClassVar[tuple[str, ...]] = ()
    #: Smallest rank of X the attack accepts (images need 3: N, H, W).
    min_ndim: ClassVar[int] = 1

    random_state: Any

    def poison(self, X: Any, y: Any, **needs: Any) -> PoisonResult:
        """Poison a training set.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        y : array-like of int, shape (n_samples,)
        **needs
            Keyword-only extras named in ``needs`` (a surrogate model, ...).

        Returns
        -------
        PoisonResult
        """
        self._validate_params()
        missing = [k for k in self.needs if needs.get(k) is None]
        if missing:
            raise InvalidParameterError(f"{type(self).__name__}.poison needs keyword argument(s) {missing}")
        X = self._check_inputs(X)
        y = check_labels(y, len(X))
        n_classes = infer_n_classes(y, getattr(self, "n_classes", None))
        if n_classes < 2:
            raise DataError(f"y must hold at least 2 classes to poison; got {n_classes}")
        Xv, yv = X.view(), y.view()
        Xv.flags.writeable = False
        yv.flags.writeable = False
        rng = check_random_state(self.random_state)
        result = self._poison(Xv, yv, n_classes=n_classes, rng=rng, **needs)
        if result.X is X or result.y is y or np.shares_memory(result.X, X) or np.shares_memory(result.y, y):
            raise AssertionError(f"{type(self).__name__} returned the caller's arrays")  # pragma: no cover
        return result

    def _check_inputs(self, X: Any) -> np.ndarray:
        """Texts (a 1-D array of str) for attacks that take text, numeric arrays otherwise."""
        from ._validation import check_texts, is_text

        if is_text(X):
            if "text" not in self.modalities:
                raise DataError(f"{type(self).__name__} works on {', '.join(self.modalities)} data, not text")
            return check_texts(X, "X")
        if self.modalities == ("text",):
            raise DataError(f"{type(self).__name__} poisons texts: X must be a 1-D sequence of str")
        return check_array(X, "X", min_ndim=self.min_ndim)

    @abstractmethod
    def _poison(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, rng: np.random.Generator,
                **needs: Any) -> PoisonResult:
        """Do the attack on validated read-only inputs."""


class BackdoorAttack(BaseAttack):
    """A dirty-label backdoor: stamp a trigger on some samples and relabel them to the target.

    ``target_mode="all-to-one"`` relabels every poisoned sample to ``target``; ``"all-to-all"``
    relabels class ``c`` to ``(c + 1) mod K``. Subclasses implement :meth:`_apply_trigger` (a pure
    function of the inputs and fitted trigger state) and may override :meth:`_fit_trigger`.
    """

    family = "backdoor"

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "target": ["class_index"],
        "target_mode": [Options(("all-to-one", "all-to-all"))],
        "poison_rate": POISON_RATE,
        "n_poison": N_POISON,
        "random_state": ["random_state"],
    }

    target: int
    target_mode: str
    poison_rate: float | None
    n_poison: int | None

    def _check_target(self, n_classes: int) -> None:
        if self.target_mode == "all-to-one":
            check_class(self.target, "target", n_classes)

    def target_labels(self, y: Any) -> np.ndarray:
        """The label the attacker wants for inputs of true class ``y`` once triggered."""
        y = check_labels(y)
        if self.target_mode == "all-to-all":
            n_classes = getattr(self, "n_classes_", None) or int(y.max()) + 1
            return (y + 1) % n_classes
        return np.full(y.shape, int(self.target), dtype=np.int64)

    def apply_trigger(self, X: Any) -> np.ndarray:
        """Return a triggered copy of ``X`` (for measuring attack success at test time)."""
        self._validate_params()
        X = self._check_inputs(X)
        self._check_trigger_ready()
        Xv = X.view()
        Xv.flags.writeable = False
        return self._apply_trigger(Xv, test=True)

    def _check_trigger_ready(self) -> None:
        """Raise NotFittedError if the trigger is drawn at ``poison`` time and none is drawn yet."""

    def _fit_trigger(self, X: np.ndarray, rng: np.random.Generator) -> None:
        """Draw any random part of the trigger (stored in attributes ending in ``_``)."""

    @abstractmethod
    def _apply_trigger(self, X: np.ndarray, *, test: bool = False) -> np.ndarray:
        """Stamp the trigger on a copy of read-only ``X`` (``test``: the test-time variant)."""

    def _poison(self, X, y, *, n_classes, rng, **needs):
        self._check_target(n_classes)
        self._fit_trigger(X, rng)
        self.n_classes_ = n_classes
        if self.target_mode == "all-to-one":
            candidates = np.flatnonzero(y != self.target)
            desc = f"samples outside target class {self.target}"
        else:
            candidates = np.arange(len(y))
            desc = "samples"
        n = resolve_n_poison(self.poison_rate, self.n_poison, len(y), len(candidates),
                             candidates_desc=desc)
        idx = np.sort(rng.choice(candidates, size=n, replace=False))
        X_out = np.array(X, copy=True)
        X_out[idx] = self._apply_trigger(X[idx])
        y_out = np.array(y, copy=True)
        y_out[idx] = self.target_labels(y[idx])
        mask = np.zeros(len(y), dtype=bool)
        mask[idx] = True
        target = int(self.target) if self.target_mode == "all-to-one" else None
        info = {"attack": type(self).__name__, "n_poison": n, "poison_rate": n / len(y),
                "target_mode": self.target_mode}
        if X.dtype != object:  # texts have no L-inf
            info["linf"] = float(np.abs(X_out[idx].astype(np.float64) - X[idx]).max()) if n else 0.0
        return PoisonResult(X_out, y_out, mask, idx, target, info)


# --- detectors -------------------------------------------------------------------------------

#: Declared constraints of the threshold parameters (``"auto"``: the detector's own rule).
CONTAMINATION = [Interval(numbers.Real, 0, 0.5, closed="right")]
CONTAMINATION_OR_AUTO = [*CONTAMINATION, Options(("auto",))]
FALSE_POSITIVE_RATE = [Interval(numbers.Real, 0, 1, closed="neither")]


class BaseDetector(Params, ABC):
    """Base class of every detector, at every stage.

    A detector works at a ``stage`` ("data", "training", "model", "inference", "federated") and
    scores units (``unit``: "sample", "input", "class", "model" or "client"); higher scores are
    more suspicious. ``fit`` sets ``scores_`` for what it was fitted on, then :meth:`_calibrate`
    sets ``threshold_`` and ``flags_``. Every subclass's ``fit`` checks the declared parameters
    before it runs (the base class wraps it), so no detector can forget to.

    The threshold comes from exactly one of two parameters:

    * ``contamination`` -- the expected poisoned fraction of the fitted data: the threshold is
      the ``1 - contamination`` quantile of ``scores_`` (PyOD's convention), so about that
      fraction is flagged. Detectors whose paper defines its own decision rule also accept
      ``contamination="auto"`` (scikit-learn's IsolationForest convention): the rule, expressed
      as a threshold on the same scores. Detectors whose paper removes a share of *each class*
      declare ``threshold_rule="per_class"``: the ``ceil(per_class_factor * contamination * n_c)``
      highest scores of each class ``c`` are flagged (spectral signatures: 1.5 epsilon per class);
    * ``false_positive_rate`` -- for detectors calibrated on clean reference data: the threshold
      is the ``1 - false_positive_rate`` quantile of the clean reference scores, so about that
      fraction of clean units is flagged. At least ``ceil(1 / false_positive_rate)`` reference
      units are needed, else the quantile is not defined by the data and we refuse.
    """

    #: Pipeline stage the detector works at.
    stage: ClassVar[str] = "data"
    unit: ClassVar[str] = "sample"
    #: Modalities of the data the detector can be used on.
    modalities: ClassVar[tuple[str, ...]] = ("image", "tabular", "text", "audio")
    #: Which of the two threshold parameters this detector takes.
    threshold_param: ClassVar[str] = "contamination"
    #: Share of each class flagged per unit of ``contamination`` by ``threshold_rule="per_class"``.
    per_class_factor: ClassVar[float] = 1.0

    scores_: np.ndarray
    threshold_: float
    flags_: np.ndarray

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is not None and not getattr(fit, "__isabstractmethod__", False) \
                and not getattr(fit, "_checks_params", False):
            @functools.wraps(fit)
            def checked_fit(self: "BaseDetector", *args: Any, **kw: Any) -> Any:
                self._validate_params()
                return fit(self, *args, **kw)

            checked_fit._checks_params = True  # type: ignore[attr-defined]
            cls.fit = checked_fit  # type: ignore[method-assign]

    @abstractmethod
    def fit(self, *args: Any, **kwargs: Any) -> "BaseDetector":
        """Fit, set ``scores_``, ``threshold_`` and ``flags_``, and return ``self``."""

    def score(self, X: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        """Scores for new items, where the method defines them."""
        raise TypeError(f"{type(self).__name__} scores only the data it was fitted on")

    def flag(self, X: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        """``score(X) > threshold_`` for new items."""
        check_is_fitted(self, "threshold_")
        return self.score(X, *args, **kwargs) > self.threshold_

    def _calibrate(self, scores: np.ndarray, reference: np.ndarray | None = None, *,
                   rule: str = "quantile", groups: np.ndarray | None = None) -> None:
        """Set ``scores_``, ``threshold_`` and ``flags_`` from fitted (and reference) scores: the
        one place every detector's threshold comes from.

        ``rule`` names how the threshold parameter becomes a threshold. For ``contamination``:
        "quantile" (:func:`contamination_threshold`) or "per_class" (the top
        ``per_class_factor * contamination`` of each class of ``groups``,
        :func:`per_class_cut`; ``scores_`` are then each class's scores minus its cut, so ranks
        within a class are unchanged and ``threshold_`` is 0). For ``false_positive_rate``:
        "quantile" (the empirical quantile of the references, :func:`fpr_threshold`) or "normal"
        (a normal fitted to them, :func:`normal_fpr_threshold`, for detectors whose paper defines
        its boundary so). The parameters were checked by ``fit`` against their declarations."""
        scores = np.asarray(scores, dtype=np.float64)
        if not np.isfinite(scores).all():
            raise AssertionError(f"{type(self).__name__} produced non-finite scores")  # pragma: no cover
        if self.threshold_param == "contamination" and isinstance(self.contamination, str):
            threshold = self._auto_threshold(scores)
        elif self.threshold_param == "contamination" and rule == "per_class":
            if groups is None:
                raise AssertionError("the per_class rule needs the class of every score")  # pragma: no cover
            scores = scores - per_class_cut(scores, np.asarray(groups),
                                            self.per_class_factor * self.contamination)
            threshold = 0.0
        elif self.threshold_param == "contamination":
            threshold = contamination_threshold(scores, self.contamination)
        else:
            ref = scores if reference is None else np.asarray(reference, dtype=np.float64)
            threshold = FPR_RULES[rule](ref, self.false_positive_rate)
        self.scores_ = scores
        self.threshold_ = float(threshold)
        self.flags_ = scores > self.threshold_

    def _auto_threshold(self, scores: np.ndarray) -> float:
        """The paper's own decision rule as a threshold (``contamination="auto"``)."""
        raise InvalidParameterError(
            f"{type(self).__name__} has no decision rule of its own; give contamination as a number"
        )


def per_class_cut(scores: np.ndarray, groups: np.ndarray, fraction: float) -> np.ndarray:
    """Per-sample cut of the per-class removal rule (Tran et al. 2018: remove the 1.5 epsilon
    highest-scoring samples of each class): for each class ``c`` with ``n_c`` samples, the
    highest score it keeps once its ``k = ceil(fraction * n_c)`` highest are removed (the lowest
    score minus 1 when all are removed), so ``scores > cut`` flags exactly those ``k``.

    Ties at a class's cut are all kept (a threshold cannot split equal scores).
    """
    cut = np.empty(len(scores), dtype=np.float64)
    for c in np.unique(groups):
        idx = np.flatnonzero(groups == c)
        k = min(len(idx), int(np.ceil(fraction * len(idx))))
        ranked = np.sort(scores[idx])[::-1]
        cut[idx] = ranked[k] if k < len(idx) else ranked[-1] - 1.0
    return cut


def contamination_threshold(scores: np.ndarray, contamination: float) -> float:
    """The ``1 - contamination`` quantile of ``scores`` (linear interpolation, as PyOD)."""
    if scores.size == 0:
        raise DataError("cannot set a threshold from zero scores")
    return float(np.quantile(scores, 1.0 - contamination))


def fpr_threshold(reference: np.ndarray, false_positive_rate: float) -> float:
    """The ``1 - false_positive_rate`` quantile of clean reference scores.

    Refuses when fewer than ``ceil(1 / false_positive_rate)`` references are given: with fewer,
    the empirical quantile cannot resolve the requested rate.
    """
    _require_references(reference, false_positive_rate)
    return float(np.quantile(reference, 1.0 - false_positive_rate, method="higher"))


def _require_references(reference: np.ndarray, false_positive_rate: float) -> None:
    need = int(np.ceil(1.0 / false_positive_rate - 1e-9))
    if reference.size < need:
        raise AssumptionError(
            f"false_positive_rate={false_positive_rate!r} needs at least {need} clean reference "
            f"items to set a threshold; got {reference.size}"
        )


def normal_fpr_threshold(reference: np.ndarray, false_positive_rate: float) -> float:
    """``mean + z_(1 - false_positive_rate) * std`` of clean reference scores: the boundary of a
    normal distribution fitted to them (maximum likelihood, as ``scipy.stats.norm.fit``), which
    flags ``false_positive_rate`` of clean units if their scores are normal.

    STRIP (Gao et al. 2019, Sec. V) sets its detection boundary this way: the clean inputs'
    entropies are assumed normal and the boundary is their FRR percentile. With at least
    ``ceil(1 / false_positive_rate)`` references, as :func:`fpr_threshold`, that are not all
    equal.
    """
    from scipy.stats import norm

    _require_references(reference, false_positive_rate)
    sd = float(reference.std())
    if sd == 0.0:
        raise AssumptionError("a normal boundary needs clean reference scores that vary; all are equal")
    return float(reference.mean() + norm.ppf(1.0 - false_positive_rate) * sd)


#: ``false_positive_rate`` -> threshold, by rule name (``BaseDetector._calibrate(rule=...)``).
FPR_RULES = {"quantile": fpr_threshold, "normal": normal_fpr_threshold}


# --- aggregators -----------------------------------------------------------------------------

class BaseAggregator(Params, ABC):
    """Base class of federated aggregation rules.

    ``aggregate(updates, weights=None, **context)`` takes an ``(n_clients, n_params)`` array of
    flattened client updates and returns the aggregated ``(n_params,)`` update. After each call,
    ``excluded_`` (bool per client) and ``weights_`` (the effective weight each client got,
    summing to 1) say whom the rule trusted this round.

    What every rule gets from this class, so that no rule can forget it:

    * a client whose update holds a NaN or an infinite value is excluded before the rule runs
      (``excluded_`` True, weight 0), so no non-finite value reaches the global model; if no
      client is left, :class:`~poisonlab.exceptions.DataError`;
    * ``weights`` (e.g. the clients' sample counts) must be non-negative with a positive sum and are
      normalised; rules that ignore them say so (``uses_weights = False``);
    * ``context``: keyword extras some rules need (``needs``, e.g. FLTrust's ``server_update``) or
      can use (``accepts``, e.g. FoolsGold's ``client_ids``, which tie an update to the client
      that sent it across rounds); a missing need fails with the rule's name.

    Stateful rules (history across rounds) implement :meth:`reset`.
    """

    stage: ClassVar[str] = "federated"
    unit: ClassVar[str] = "client"
    #: Aggregators see flattened parameter updates, whatever the data was.
    modalities: ClassVar[tuple[str, ...]] = ()
    #: Keyword context the rule cannot work without (e.g. ``("server_update",)``).
    needs: ClassVar[tuple[str, ...]] = ()
    #: Optional keyword context the rule uses when given (e.g. ``("client_ids",)``).
    accepts: ClassVar[tuple[str, ...]] = ()
    #: Whether the client weights change the result (FedAvg: yes; the median: no).
    uses_weights: ClassVar[bool] = True
    #: Whether one client sending an arbitrarily large update cannot drag the aggregate away
    #: from the honest ones (False for FedAvg, norm clipping, FoolsGold); the contract checks it.
    robust: ClassVar[bool] = True

    excluded_: np.ndarray
    weights_: np.ndarray

    def aggregate(self, updates: Any, weights: Any = None, **context: Any) -> np.ndarray:
        """Aggregate ``updates`` (n_clients, n_params) with optional client ``weights``.

        Parameters
        ----------
        updates : array-like of shape (n_clients, n_params)
            One flattened update per client; rows with a NaN or infinity are excluded.
        weights : array-like of shape (n_clients,), optional
            Non-negative client weights (sample counts); uniform when omitted.
        **context
            The keyword extras named in ``needs`` / ``accepts``.

        Returns
        -------
        ndarray of shape (n_params,)
        """
        self._validate_params()
        name = type(self).__name__
        unknown = sorted(set(context) - set(self.needs) - set(self.accepts))
        if unknown:
            raise InvalidParameterError(f"{name}.aggregate does not take {unknown}; it takes "
                                        f"{sorted(self.needs + self.accepts) or 'no context'}")
        missing = [k for k in self.needs if context.get(k) is None]
        if missing:
            raise InvalidParameterError(f"{name}.aggregate needs keyword argument(s) {missing}")
        try:
            U = np.asarray(updates)
        except ValueError as exc:
            raise DataError(f"updates must be one equal-length vector per client: {exc}") from None
        if U.ndim != 2:
            raise DataError(f"updates must be a 2-D array (n_clients, n_params); got shape {U.shape}")
        if U.shape[0] == 0:
            raise DataError("updates holds no client: a round needs at least one client update")
        if U.shape[1] == 0:
            raise DataError("updates has 0 parameters per client")
        try:
            U = U.astype(np.float64, copy=False)
        except (TypeError, ValueError) as exc:
            raise DataError(f"updates must be numeric; got dtype {U.dtype}") from exc
        n = U.shape[0]
        if weights is None:
            w = np.full(n, 1.0 / n)
        else:
            try:
                w = np.asarray(weights, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"weights must be numbers, one per client: {exc}") from None
            if w.ndim != 1 or w.shape[0] != n:
                raise DataError(f"weights has shape {w.shape} but there are {n} client updates")
            if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise DataError("weights must be finite and non-negative with a positive sum")
        finite = np.isfinite(U).all(axis=1)
        if not finite.any():
            raise DataError(f"all {n} client updates hold NaN or infinite values: nothing to aggregate")
        keep = finite & (w > 0)
        if not keep.any():
            raise DataError("every client with a finite update has weight 0: nothing to aggregate")
        if context.get("client_ids") is not None and len(np.asarray(context["client_ids"])) != n:
            raise DataError(f"client_ids has {len(np.asarray(context['client_ids']))} entries but there are "
                            f"{n} client updates")
        all_kept = bool(keep.all())
        w_kept = w[keep] / w[keep].sum()
        ctx = {k: (np.asarray(v)[keep] if k == "client_ids" and v is not None else v) for k, v in context.items()}
        self.n_dropped_ = int(n - keep.sum())
        Uk = U.view() if all_kept else U[keep]
        Uk.flags.writeable = False  # a rule that would write into the caller's updates fails loudly
        out, eff_kept = self._aggregate(Uk, w_kept, **ctx)
        out = np.asarray(out, dtype=np.float64)
        if out.shape != (U.shape[1],) or not np.isfinite(out).all():
            raise DataError(f"{name} produced a non-finite or misshapen aggregate")  # pragma: no cover
        eff = np.zeros(n)
        eff[keep] = eff_kept
        self.weights_ = eff
        self.excluded_ = eff <= 0
        return out

    def reset(self) -> "BaseAggregator":
        """Forget any history kept across rounds (stateless rules: nothing to do)."""
        return self

    @abstractmethod
    def _aggregate(self, U: np.ndarray, w: np.ndarray, **context: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return the aggregate and the effective per-client weights (finite rows only)."""


# --- federated attacks -----------------------------------------------------------------------

class BaseUpdateAttack(Params, ABC):
    """Base class of federated model-poisoning attacks: malicious clients' updates.

    ``craft(own_updates, *, honest_updates=None, n_clients=None)`` turns the updates the
    malicious clients would have sent had they been honest (computed on their own data, shape
    ``(n_malicious, n_params)``) into the updates they send instead, same shape. The threat model
    is declared in ``knowledge``:

    * ``"own"`` -- the attacker sees only its own clients' updates (sign flip, Gaussian noise,
      scaling / model replacement);
    * ``"honest"`` -- the attacker also sees every honest update of the round (``honest_updates``),
      the omniscient setting of ALIE, IPM and min-max / min-sum.

    Inputs are never modified; the same ``random_state`` gives the same updates.
    """

    stage: ClassVar[str] = "federated"
    unit: ClassVar[str] = "client"
    family: ClassVar[str] = "model_poisoning"
    modalities: ClassVar[tuple[str, ...]] = ()
    #: What the attacker sees: "own" (its own updates) or "honest" (all honest updates).
    knowledge: ClassVar[str] = "own"

    random_state: Any

    def craft(self, own_updates: Any, *, honest_updates: Any = None,
              n_clients: int | None = None) -> np.ndarray:
        """Return the malicious clients' updates.

        Parameters
        ----------
        own_updates : array-like of shape (n_malicious, n_params)
            What the malicious clients would send if honest.
        honest_updates : array-like of shape (n_honest, n_params), optional
            The honest clients' updates of this round; required when ``knowledge == "honest"``.
        n_clients : int, optional
            Clients taking part in the round (malicious included); defaults to
            ``n_malicious + n_honest``.

        Returns
        -------
        ndarray of shape (n_malicious, n_params)
        """
        self._validate_params()
        name = type(self).__name__
        own = check_array(own_updates, "own_updates", min_ndim=2, max_ndim=2, dtype=np.float64)
        if own.shape[0] == 0:
            raise DataError("own_updates holds no malicious client")
        honest = None
        if honest_updates is not None:
            honest = check_array(honest_updates, "honest_updates", min_ndim=2, max_ndim=2, dtype=np.float64)
            if honest.shape[1] != own.shape[1]:
                raise DataError(f"honest_updates has {honest.shape[1]} parameters per client but "
                                f"own_updates has {own.shape[1]}")
        if self.knowledge == "honest" and (honest is None or honest.shape[0] == 0):
            raise DataError(f"{name} needs the honest clients' updates (knowledge='honest'): "
                            "pass honest_updates with at least one row")
        n_total = own.shape[0] + (0 if honest is None else honest.shape[0])
        if n_clients is None:
            n_clients = n_total
        elif int(n_clients) < own.shape[0]:
            raise InvalidParameterError(f"n_clients must be at least the {own.shape[0]} malicious "
                                        f"clients; got {n_clients}")
        ov = own.view()
        ov.flags.writeable = False
        hv = None
        if honest is not None:
            hv = honest.view()
            hv.flags.writeable = False
        rng = check_random_state(self.random_state)
        out = np.asarray(self._craft(ov, honest=hv, n_clients=int(n_clients), rng=rng), dtype=np.float64)
        if out.shape != own.shape:
            raise AssertionError(f"{name} returned shape {out.shape}, expected {own.shape}")  # pragma: no cover
        return out

    @abstractmethod
    def _craft(self, own: np.ndarray, *, honest: np.ndarray | None, n_clients: int,
               rng: np.random.Generator) -> np.ndarray:
        """The malicious updates from read-only inputs."""


# --- trainers --------------------------------------------------------------------------------

class BaseTrainer(Params, ABC):
    """Base class of training-stage defenses (partition ensembles, RONI, anti-backdoor learning,
    trimmed loss, DP-SGD).

    A trainer *wraps* the training loop instead of replacing it: ``fit`` receives the user's
    ``model_factory`` (``ModelSpec -> nn.Module``, or a zero-argument factory of a scikit-learn
    classifier for trainers that take one) and optionally the pieces
    :func:`poisonlab.models.training.train_module` accepts (``config``, ``optimizer_factory``,
    ``loss_fn``, ``loader_factory``), and returns ``self`` with:

    * ``classifier_`` -- the fitted classifier (``predict``, ``predict_proba``), the model the
      defense produced;
    * what the trainer learned, as far as it applies: ``flags_`` (bool per training sample, True =
      isolated / rejected / trimmed in the end) and ``scores_`` (higher = more suspicious),
      ``certificate_`` (certified trainers: per-input radii from ``certify(X)``), ``epsilon_``
      (DP-SGD: the privacy spent, for ``delta_``).

    The user's objects are never mutated (a factory is called, never a module trained in place),
    the inputs are never modified, and the same ``random_state`` gives the same model.
    """

    stage: ClassVar[str] = "training"
    unit: ClassVar[str] = "model"

    classifier_: Any

    def fit(self, X: Any, y: Any, *, model_factory: Any, config: Any = None, **hooks: Any) -> "BaseTrainer":
        """Train through the defense; ``hooks`` are the optional training-loop factories."""
        self._validate_params()
        X = self._check_inputs(X)
        y = check_labels(y, len(X))
        if infer_n_classes(y) < 2:
            raise DataError(f"y must hold at least 2 classes to train on; got {infer_n_classes(y)}")
        Xv, yv = X.view(), y.view()
        Xv.flags.writeable = False
        yv.flags.writeable = False
        self._fit(Xv, yv, model_factory=model_factory, config=config,
                  rng=check_random_state(getattr(self, "random_state", None)), **hooks)
        return self

    def _check_inputs(self, X: Any) -> np.ndarray:
        from ._validation import check_texts, is_text

        return check_texts(X, "X") if is_text(X) else check_array(X, "X", min_ndim=2)

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, *, model_factory: Any, config: Any,
             rng: np.random.Generator, **hooks: Any) -> None:
        """Train on validated read-only inputs; set ``classifier_`` and what was learned."""

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict_proba(X)
