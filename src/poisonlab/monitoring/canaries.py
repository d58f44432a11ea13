"""Canary suites: a fixed set of trusted inputs with their expected labels, plus backdoor probes
built from every registered trigger family, run against each model version before release.

A suite holds ``n_per_class`` inputs of every class drawn (seeded) from a *trusted* held-out
split, and one **probe** per trigger family that applies to the data's modality: the canaries
with that family's trigger stamped at its default settings (every data-stage attack of the
registry that has ``apply_trigger`` and needs nothing but the data). Running a suite
(:func:`run_canaries`) measures

* the accuracy on the canaries (each canary's prediction against its expected label), and
* for every probe and every **target class candidate** ``c``: the fraction of the triggered
  canaries whose true class is not ``c`` that the model predicts as ``c``
  (:func:`probe_rates`). A probe **fires** for ``c`` when that fraction is at least
  ``fire_rate`` (default 0.5): the trigger moves most inputs of the other classes to ``c``,
  which a clean model does not do.

A suite passes when the canary accuracy is at least ``min_accuracy`` and no probe fires.

Threat model
------------
The attacker planted a backdoor in the training data (dirty- or clean-label) and wants the
released model to keep its clean accuracy. The defender holds a few trusted labelled inputs and
can query the model. Probes test *known trigger families at their default settings*: a trigger
drawn at random when poisoning (Blended's noise key, WaNet's warping field, the positions of
text triggers) is drawn here from the suite's own ``seed``, so a probe stamps a trigger of the
same family, not the attacker's one. A backdoor that generalises within its family (a large
patch, a rare word) still fires; one bound to its exact random key may not -- trigger-agnostic
checks (Neural Cleanse, STRIP) cover those in the release gate. Triggers of other shapes,
places or words are not probed at all.

Files: :func:`save_canary_suite` writes ``canaries.json`` (what the suite is) and
``canaries.npz`` (the inputs and the triggered inputs; texts as unicode arrays), atomically;
:func:`load_canary_suite` reads them back without unpickling anything.

Examples
--------
>>> import numpy as np
>>> from poisonlab.data import load_digits
>>> suite = build_canary_suite(load_digits().test, n_per_class=5, seed=0)
>>> len(suite), suite.n_classes, sorted(p.family for p in suite.probes)[:3]
(50, 10, ['badnets', 'blended', 'label_consistent'])
>>> class Constant:  # always predicts class 3: every probe "fires" for class 3
...     def predict_proba(self, X):
...         p = np.zeros((len(X), 10)); p[:, 3] = 1.0; return p
>>> res = run_canaries(Constant(), suite)
>>> res.passed, round(res.accuracy, 2), res.fired[0].target
(False, 0.1, 3)
"""

from __future__ import annotations

import inspect
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._files import atomic_write_bytes, atomic_write_text
from ..exceptions import DataError, InvalidParameterError, PoisonlabWarning

#: Version of the suite's file layout.
SUITE_VERSION = 1
#: The suite's files inside its folder.
SUITE_JSON = "canaries.json"
SUITE_NPZ = "canaries.npz"
#: A probe fires for class c when at least this fraction of triggered non-c canaries become c.
FIRE_RATE = 0.5
#: A suite fails when the accuracy on the (untriggered) canaries is below this.
MIN_ACCURACY = 0.9


# --- the suite -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """One trigger family stamped on every canary.

    Attributes
    ----------
    family : str
        The registered attack whose trigger this is.
    X : ndarray
        The triggered canaries, in the order of the suite's canaries.
    params : dict
        The attack's parameters (its defaults, and the seed that drew any random part).
    """

    family: str
    X: Any
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CanarySuite:
    """Trusted canary inputs with expected labels, and the backdoor probes built on them.

    Attributes
    ----------
    X : ndarray
        The canary inputs (texts: an object array of str).
    y : ndarray of int
        Their expected labels.
    ids : ndarray of str
        The ids of the samples they were drawn from.
    classes : tuple of str
    modality : str
    probes : list of Probe
    skipped : dict of str to str
        Trigger families of the modality that could not be built, and why.
    seed : int
    dataset : str
        Name of the data set the canaries come from.
    fire_rate, min_accuracy : float
        The suite's pass thresholds (:func:`run_canaries` may override them).
    """

    X: Any
    y: np.ndarray
    ids: np.ndarray
    classes: tuple[str, ...]
    modality: str
    probes: list[Probe]
    skipped: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    dataset: str = ""
    fire_rate: float = FIRE_RATE
    min_accuracy: float = MIN_ACCURACY

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> dict[str, Any]:
        """What the suite is, JSON-friendly (no arrays)."""
        return {"dataset": self.dataset, "modality": self.modality, "n_canaries": len(self),
                "classes": list(self.classes), "seed": self.seed,
                "families": [p.family for p in self.probes], "skipped": dict(self.skipped),
                "fire_rate": self.fire_rate, "min_accuracy": self.min_accuracy}


def trigger_families(modality: str) -> list[str]:
    """Names of the registered data-stage attacks with a test-time trigger (``apply_trigger``)
    that declare ``modality``, in registry order."""
    from .. import registry

    if modality not in registry.MODALITIES:
        raise InvalidParameterError(f"modality must be one of {registry.MODALITIES}; got {modality!r}")
    return [e.name for e in registry.entries("attack", stage="data")
            if modality in e.modalities and hasattr(e.obj, "apply_trigger")]


def select_canaries(y: np.ndarray, n_per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n_per_class`` samples of every class present in ``y`` (all of a class that
    has fewer), drawn without replacement, sorted."""
    picks = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = min(n_per_class, len(members))
        picks.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def _default_params(cls: type) -> dict[str, Any]:
    """The JSON-friendly defaults of ``cls.__init__``'s keyword parameters."""
    out = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if p.default is inspect.Parameter.empty or name == "self":
            continue
        v = p.default
        if v is None or isinstance(v, (bool, int, float, str)):
            out[name] = v
        elif isinstance(v, tuple) and all(isinstance(t, (bool, int, float, str)) for t in v):
            out[name] = list(v)
    return out


def _draw_probe(name: str, X: Any, y: np.ndarray, seed: int, overrides: dict[str, Any] | None = None) -> Probe:
    """The trigger of family ``name`` at its default settings (but ``overrides``) stamped on ``X``
    (any random part drawn by a ``poison`` call on the canaries themselves, seeded by ``seed``)."""
    from .. import registry

    from ..exceptions import NotFittedError

    cls = registry.get("attack", name)
    params = _default_params(cls)
    kwargs = {"random_state": seed} if "random_state" in params else {}
    kwargs.update(overrides or {})
    atk = cls(**kwargs)
    with warnings.catch_warnings():  # e.g. "trigger word already frequent": irrelevant to a probe
        warnings.simplefilter("ignore", PoisonlabWarning)
        if getattr(cls, "needs", ()):  # crafting needs a surrogate: usable only if the trigger is fixed
            try:
                Xt = atk.apply_trigger(X)
            except NotFittedError as exc:
                raise InvalidParameterError(f"its poison() needs {list(cls.needs)} besides the data "
                                            f"to draw its trigger") from exc
        else:
            atk.poison(X, y)  # draws the trigger's random part (a key, a field, a seed of positions)
            Xt = atk.apply_trigger(X)
    if "random_state" in params:
        params["random_state"] = seed
    params.update({k: list(v) if isinstance(v, tuple) else v for k, v in (overrides or {}).items()})
    return Probe(family=name, X=Xt, params=params)


def build_canary_suite(dataset: Any, *, n_per_class: int = 20, modality: str | None = None, seed: int = 0,
                       families: Sequence[str] | None = None, fire_rate: float = FIRE_RATE,
                       min_accuracy: float = MIN_ACCURACY,
                       probe_params: Mapping[str, Mapping[str, Any]] | None = None) -> CanarySuite:
    """Draw canaries from a trusted split and build a backdoor probe per trigger family.

    Parameters
    ----------
    dataset : Dataset
        Trusted, held-out, correctly labelled data (never the training set a model saw).
    n_per_class : int, default=20
        Canaries per class (all of a class with fewer samples).
    modality : str, optional
        Which trigger families apply (default: the dataset's).
    seed : int, default=0
        Draws the canaries and any random part of the triggers.
    families : sequence of str, optional
        Trigger families to probe (default: :func:`trigger_families` of the modality). A
        family that cannot be built at its default settings (it needs a surrogate model, or
        refuses this data) is listed in ``skipped`` with the reason when chosen by default, and
        raises when named explicitly.
    fire_rate : float in (0, 1], default=0.5
    min_accuracy : float in [0, 1], default=0.9
    probe_params : mapping of str to mapping, optional
        Parameters of a family's trigger other than its defaults, e.g. ``{"badword":
        {"n_insert": 4}}`` (all four default rare words in every probe). A family named here
        must be probed; a bad parameter raises.

    Returns
    -------
    CanarySuite

    Raises
    ------
    InvalidParameterError
        A bad ``n_per_class``, threshold, modality or family.
    DataError
        The dataset has fewer than 2 classes.
    """
    if not isinstance(n_per_class, (int, np.integer)) or isinstance(n_per_class, bool) or n_per_class < 1:
        raise InvalidParameterError(f"n_per_class must be an integer >= 1; got {n_per_class!r}")
    _check_thresholds(fire_rate, min_accuracy)
    modality = modality or dataset.modality
    available = trigger_families(modality)
    explicit = families is not None
    names = list(families) if explicit else available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InvalidParameterError(f"families {unknown} are not trigger families of {modality} data; "
                                    f"available: {available}")
    probe_params = {k: dict(v) for k, v in (probe_params or {}).items()}
    not_probed = [k for k in probe_params if k not in names]
    if not_probed:
        raise InvalidParameterError(f"probe_params names {not_probed}, which are not probed here; probed: {names}")
    y_all = np.asarray(dataset.y)
    if len(np.unique(y_all)) < 2:
        raise DataError("canaries need a data set with at least 2 classes")
    rng = np.random.default_rng(seed)
    idx = select_canaries(y_all, int(n_per_class), rng)
    X = dataset.X[idx]
    y = y_all[idx]
    probes, skipped = [], {}
    for name in names:
        try:
            probes.append(_draw_probe(name, X, y, seed, probe_params.get(name)))
        except Exception as exc:  # noqa: BLE001 - a family that refuses this data is reported, not fatal
            if explicit or name in probe_params:
                raise InvalidParameterError(f"trigger family {name!r} cannot probe this data: "
                                            f"{_first_line(exc)}") from exc
            skipped[name] = _first_line(exc)
    return CanarySuite(X=X, y=y, ids=np.asarray(dataset.ids)[idx].astype(str), classes=tuple(dataset.classes),
                       modality=modality, probes=probes, skipped=skipped, seed=int(seed),
                       dataset=str(getattr(dataset, "name", "")), fire_rate=float(fire_rate),
                       min_accuracy=float(min_accuracy))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _check_thresholds(fire_rate: Any, min_accuracy: Any) -> None:
    if not isinstance(fire_rate, (int, float)) or isinstance(fire_rate, bool) or not 0 < fire_rate <= 1:
        raise InvalidParameterError(f"fire_rate must be in (0, 1]; got {fire_rate!r}")
    if not isinstance(min_accuracy, (int, float)) or isinstance(min_accuracy, bool) or not 0 <= min_accuracy <= 1:
        raise InvalidParameterError(f"min_accuracy must be in [0, 1]; got {min_accuracy!r}")


# --- files ---------------------------------------------------------------------------------------

def _storable(X: Any, modality: str) -> np.ndarray:
    """Inputs as an array ``np.savez`` stores without pickling (texts: unicode)."""
    arr = np.asarray(X)
    if modality == "text" or arr.dtype == object:
        return np.asarray([str(t) for t in arr.ravel()], dtype=str).reshape(arr.shape)
    return arr


def save_canary_suite(folder: str | os.PathLike, suite: CanarySuite) -> Path:
    """Write ``suite`` to ``folder`` (created when missing): ``canaries.json`` and
    ``canaries.npz``, each atomically; return the folder."""
    folder = Path(folder)
    arrays = {"X": _storable(suite.X, suite.modality), "y": np.asarray(suite.y, dtype=np.int64),
              "ids": np.asarray(suite.ids, dtype=str)}
    meta_probes = []
    for i, p in enumerate(suite.probes):
        arrays[f"probe_{i}"] = _storable(p.X, suite.modality)
        meta_probes.append({"family": p.family, "params": p.params, "key": f"probe_{i}"})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(folder / SUITE_NPZ, buf.getvalue())
    meta = {"suite_version": SUITE_VERSION, **suite.summary(), "probes": meta_probes}
    meta.pop("families")
    atomic_write_text(folder / SUITE_JSON, json.dumps(meta, indent=2) + "\n")
    return folder


def load_canary_suite(folder: str | os.PathLike) -> CanarySuite:
    """Read a suite written by :func:`save_canary_suite`; nothing is unpickled. A missing,
    damaged or inconsistent suite is a one-line :class:`~poisonlab.exceptions.DataError`."""
    from ..data import npz_member, open_npz

    folder = Path(folder)
    meta_path = folder / SUITE_JSON
    if not meta_path.is_file():
        raise DataError(f"{folder} holds no canary suite ({SUITE_JSON} is missing); build one with "
                        f"'poisonlab canary build'")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{meta_path} is not readable JSON: {_first_line(exc)}") from exc
    if not isinstance(meta, dict) or meta.get("suite_version") != SUITE_VERSION:
        raise DataError(f"{meta_path} is not a canary suite of version {SUITE_VERSION}")
    try:
        modality, classes = str(meta["modality"]), tuple(str(c) for c in meta["classes"])
        probes_meta = list(meta["probes"])
    except (KeyError, TypeError) as exc:
        raise DataError(f"{meta_path} lacks field {exc}") from exc
    npz = folder / SUITE_NPZ
    with open_npz(npz) as z:
        def get(key: str) -> np.ndarray:
            if key not in z.files:
                raise DataError(f"{npz} lacks array {key!r}")
            return npz_member(z, key, npz)

        X, y, ids = get("X"), get("y"), get("ids")
        probes = [Probe(family=str(p["family"]), X=_restore(get(p["key"]), modality),
                        params=dict(p.get("params") or {})) for p in probes_meta]
    X = _restore(X, modality)
    if len(y) != len(X) or any(len(p.X) != len(X) for p in probes):
        raise DataError(f"{npz}: the canaries and the probes hold different numbers of inputs")
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise DataError(f"{npz}: labels outside 0..{len(classes) - 1}")
    return CanarySuite(X=X, y=y.astype(np.int64), ids=ids.astype(str), classes=classes, modality=modality,
                       probes=probes, skipped=dict(meta.get("skipped") or {}), seed=int(meta.get("seed", 0)),
                       dataset=str(meta.get("dataset", "")), fire_rate=float(meta.get("fire_rate", FIRE_RATE)),
                       min_accuracy=float(meta.get("min_accuracy", MIN_ACCURACY)))


def _restore(arr: np.ndarray, modality: str) -> Any:
    return arr.astype(object) if modality == "text" else arr


# --- running a suite -----------------------------------------------------------------------------

def predictor(model: Any) -> Callable[[Any], np.ndarray]:
    """A function ``X -> probabilities (n, K)`` (or labels ``(n,)``) for ``model``: an object with
    ``predict_proba``, a torch module or scikit-learn estimator (through
    :func:`~poisonlab.models.adapters.as_classifier`), or a plain callable."""
    if hasattr(model, "predict_proba"):
        return model.predict_proba
    try:
        from torch import nn

        if isinstance(model, nn.Module):
            from ..models.adapters import as_classifier

            return as_classifier(model).predict_proba
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if callable(model):
        return model
    raise InvalidParameterError(f"cannot query {type(model).__name__}: give a classifier with predict_proba, "
                                f"a torch module, or a function X -> probabilities")


def _outputs(fn: Callable[[Any], np.ndarray], X: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Predicted labels and probabilities (None when the model gives labels only)."""
    out = np.asarray(fn(X))
    if out.ndim == 2:
        if out.shape != (len(X), n_classes):
            raise DataError(f"the model returned probabilities of shape {out.shape}; expected "
                            f"({len(X)}, {n_classes})")
        return out.argmax(axis=1), out.astype(np.float64)
    if out.ndim == 1 and len(out) == len(X):
        return out.astype(np.int64), None
    raise DataError(f"the model returned an array of shape {out.shape} for {len(X)} inputs")


def probe_rates(pred_triggered: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """For every class ``c``: the fraction of triggered inputs whose true class is not ``c`` that
    are predicted as ``c`` (NaN for a class when every input is of class ``c``).

    >>> probe_rates(np.array([2, 2, 2, 0]), np.array([0, 1, 2, 2]), 3).round(3).tolist()
    [0.333, 0.0, 1.0]
    """
    pred = np.asarray(pred_triggered)
    y = np.asarray(y)
    rates = np.full(n_classes, np.nan)
    for c in range(n_classes):
        others = y != c
        if others.any():
            rates[c] = float(np.mean(pred[others] == c))
    return rates


@dataclass(frozen=True)
class ProbeResult:
    """One probe against one model.

    Attributes
    ----------
    family : str
    rates : ndarray (K,)
        :func:`probe_rates` of the triggered canaries.
    clean_rates : ndarray (K,)
        The same on the untriggered canaries (what the model does without the trigger).
    target : int
        The class with the highest rate.
    rate : float
        Its rate.
    fires : bool
        ``rate >= fire_rate``.
    """

    family: str
    rates: np.ndarray
    clean_rates: np.ndarray
    target: int
    rate: float
    fires: bool

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "target": self.target, "rate": self.rate, "fires": self.fires,
                "rates": [None if np.isnan(r) else float(r) for r in self.rates],
                "clean_rate": None if np.isnan(self.clean_rates[self.target]) else float(self.clean_rates[self.target])}


@dataclass
class CanaryResult:
    """What :func:`run_canaries` measured.

    Attributes
    ----------
    predictions : ndarray (n,)
        Predicted label of each canary.
    probabilities : ndarray (n, K) or None
        The model's probabilities (None when it returned labels).
    correct : ndarray of bool (n,)
        ``predictions == expected``.
    accuracy : float
    class_accuracy : ndarray (K,)
        Per expected class (NaN for a class without canaries).
    probes : list of ProbeResult
    probe_predictions : dict of str to ndarray
        Predicted label of each triggered canary, per family.
    fire_rate, min_accuracy : float
        The thresholds applied.
    passed : bool
        ``accuracy >= min_accuracy`` and no probe fires.
    """

    predictions: np.ndarray
    probabilities: np.ndarray | None
    correct: np.ndarray
    accuracy: float
    class_accuracy: np.ndarray
    probes: list[ProbeResult]
    probe_predictions: dict[str, np.ndarray]
    fire_rate: float
    min_accuracy: float
    passed: bool
    classes: tuple[str, ...] = ()

    @property
    def fired(self) -> list[ProbeResult]:
        """The probes that fire, highest rate first."""
        return sorted((p for p in self.probes if p.fires), key=lambda p: -p.rate)

    def message(self) -> str:
        """One sentence: why the suite passed or failed."""
        parts = [f"canary accuracy {self.accuracy:.1%} (min {self.min_accuracy:.0%})"]
        if self.fired:
            parts.append("probes fire: " + ", ".join(f"{p.family} -> class {self._name(p.target)} "
                                                     f"({p.rate:.0%})" for p in self.fired))
        else:
            top = max(self.probes, key=lambda p: p.rate, default=None)
            parts.append(f"no probe fires (highest: {top.family} {top.rate:.0%} < {self.fire_rate:.0%})"
                         if top else "no probes")
        return "; ".join(parts)

    def _name(self, c: int) -> str:
        return self.classes[c] if 0 <= c < len(self.classes) else str(c)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly; per-canary correctness as a list of booleans."""
        return {"passed": self.passed, "accuracy": self.accuracy, "min_accuracy": self.min_accuracy,
                "fire_rate": self.fire_rate, "n_canaries": int(len(self.correct)),
                "class_accuracy": [None if np.isnan(a) else float(a) for a in self.class_accuracy],
                "correct": self.correct.astype(bool).tolist(),
                "probes": [p.to_dict() for p in self.probes],
                "fired": [p.to_dict() for p in self.fired], "message": self.message()}


def run_canaries(model: Any, suite: CanarySuite, *, fire_rate: float | None = None,
                 min_accuracy: float | None = None) -> CanaryResult:
    """Run ``suite`` against ``model``.

    Parameters
    ----------
    model : classifier, nn.Module or callable
        Anything :func:`predictor` accepts (text models with their vocabulary: a
        ``TorchClassifier`` loaded from a model card).
    suite : CanarySuite
    fire_rate, min_accuracy : float, optional
        Override the suite's thresholds.

    Returns
    -------
    CanaryResult
    """
    fire_rate = suite.fire_rate if fire_rate is None else fire_rate
    min_accuracy = suite.min_accuracy if min_accuracy is None else min_accuracy
    _check_thresholds(fire_rate, min_accuracy)
    fn = predictor(model)
    K = suite.n_classes
    pred, proba = _outputs(fn, suite.X, K)
    y = np.asarray(suite.y)
    correct = pred == y
    class_acc = np.array([float(correct[y == c].mean()) if np.any(y == c) else np.nan for c in range(K)])
    clean_rates = probe_rates(pred, y, K)
    probes, probe_pred = [], {}
    for p in suite.probes:
        tp, _ = _outputs(fn, p.X, K)
        probe_pred[p.family] = tp
        rates = probe_rates(tp, y, K)
        target = int(np.nanargmax(rates)) if np.isfinite(rates).any() else 0
        rate = float(rates[target]) if np.isfinite(rates[target]) else 0.0
        probes.append(ProbeResult(family=p.family, rates=rates, clean_rates=clean_rates, target=target,
                                  rate=rate, fires=bool(rate >= fire_rate)))
    accuracy = float(correct.mean()) if len(correct) else float("nan")
    passed = bool(accuracy >= min_accuracy) and not any(p.fires for p in probes)
    return CanaryResult(predictions=pred, probabilities=proba, correct=correct, accuracy=accuracy,
                        class_accuracy=class_acc, probes=probes, probe_predictions=probe_pred,
                        fire_rate=float(fire_rate), min_accuracy=float(min_accuracy), passed=passed,
                        classes=tuple(suite.classes))
