"""The data scan: rank every training sample by how likely it is poisoned, say why, quarantine
the worst, and (optionally) retrain without them.

Representations come from the user's model (a named layer) or from a reference model trained
on the data under suspicion -- what a defender has: the poisoned model itself is the lens that
makes backdoor poisons stand out (Tran et al. 2018; Chen et al. 2018).

A workflow of the run layer: it composes sample-level detectors (``defenses.data``), the
training loop (``models``) and the detection metrics (``evaluation``), and reports what it does
through typed events (:mod:`poisonlab.runs.events`), never by printing.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .. import registry
from ..data.dataset import Dataset
from ..defenses.data.combine import votes_then_rank
from ..exceptions import DataError, InvalidParameterError
from .events import DetectorFinished, Event, StepFinished, StepStarted, ignore, training_callback

Emit = Callable[[Event], None]

#: What a scan runs when the user names no detectors.
DEFAULT_DETECTORS = ("spectral", "spectre", "activation_clustering", "label_issues", "knn_label",
                     "robust_outliers", "duplicates")

#: Why a detector flags a sample, in a user's words.
REASONS = {
    "spectral": "spectral outlier along the class's top direction",
    "spectre": "outlier after robust whitening (QUE score)",
    "activation_clustering": "in a small, separate activation cluster of its class",
    "label_issues": "label disagrees with out-of-fold predictions",
    "knn_label": "label disagrees with its nearest neighbours",
    "robust_outliers": "far from its class (robust Mahalanobis)",
    "duplicates": "a copy of another sample with a different label",
}

#: The label of the scan's events (the reference model's training uses its own).
LABEL = "scan"


@dataclass
class ScanResult:
    """Everything a scan found. ``combined`` = detectors flagging a sample + their rank average
    (:func:`~poisonlab.defenses.data.combine.votes_then_rank`); ``order`` ranks samples by it,
    most suspicious first."""

    ids: np.ndarray
    y: np.ndarray
    scores: dict[str, np.ndarray]
    flags: dict[str, np.ndarray]
    combined: np.ndarray
    quarantine: np.ndarray
    order: np.ndarray
    seconds: dict[str, float]
    representation: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    retrain: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)
    contamination: float | None = None

    @property
    def detectors(self) -> list[str]:
        """The detectors that ran, in order."""
        return list(self.scores)

    def reasons(self, i: int) -> list[str]:
        return [REASONS.get(name, name) for name, f in self.flags.items() if f[i]]

    def table(self, top: int = 20) -> list[dict[str, Any]]:
        """The ``top`` most suspicious samples as rows (id, label, combined score, flaggers)."""
        rows = []
        for rank, i in enumerate(self.order[:top], 1):
            rows.append({"rank": rank, "id": str(self.ids[i]), "label": int(self.y[i]),
                         "score": float(self.combined[i]),
                         "flagged_by": [n for n, f in self.flags.items() if f[i]],
                         "why": self.reasons(int(i))})
        return rows

    def to_dict(self, top: int = 20) -> dict[str, Any]:
        """The scan's summary as JSON-friendly data (per-sample arrays left out: see
        :attr:`scores`, :attr:`flags`, :attr:`combined`)."""
        return {"detectors": self.detectors, "contamination": self.contamination,
                "representation": self.representation, "seconds": self.seconds,
                "n_quarantined": int(self.quarantine.sum()), "top": self.table(top),
                "class_reports": self.reports, "evaluation": self.evaluation, "retrain": self.retrain}


def representations(dataset: Dataset, *, model: Any = None, layer: str | None = None,
                    architecture: str | None = None, config: Any = None,
                    emit: Emit | None = None) -> tuple[np.ndarray, Any]:
    """Penultimate (or ``layer``) features of every sample, and the model they came from.

    With no ``model``, a reference model for the modality is trained on ``dataset`` itself; its
    epochs and batches are emitted under the label ``"reference model"``.
    """
    from ..models.adapters import TorchClassifier, as_classifier
    from ..models.architectures import model_factory
    from ..models.text import Vocabulary
    from ..models.training import TrainConfig

    if model is None:
        vocab = Vocabulary() if dataset.modality == "text" else None
        model = TorchClassifier(model_factory(architecture, dataset.modality),
                                config=config or TrainConfig(epochs=5), vocabulary=vocab)
        model.fit(dataset.X, dataset.y, callback=training_callback(emit, "reference model"))
    else:
        model = as_classifier(model)
    return model.embed(dataset.X, layer), model


def scan(dataset: Dataset, *, features: np.ndarray | None = None, model: Any = None,
         layer: str | None = None, detectors: Sequence[str | tuple[str, dict[str, Any]]] = DEFAULT_DETECTORS,
         contamination: float = 0.05, raw_input_duplicates: bool = True,
         architecture: str | None = None, config: Any = None, poison_mask: np.ndarray | None = None,
         random_state: int | None = None, emit: Emit | None = None) -> ScanResult:
    """Scan ``dataset`` with ``detectors`` and combine them into one ranking.

    Parameters
    ----------
    dataset : Dataset
    features : ndarray (n, d), optional
        Precomputed representations; else taken from ``model`` (or a reference model).
    model : classifier or nn.Module, optional
        The model whose ``layer`` features are scanned; default: a reference model of
        ``architecture`` trained on ``dataset`` with ``config``.
    layer : str, optional
        Layer to read features from (default: the penultimate one).
    detectors : sequence of str or (str, dict)
        Names of sample-level detectors (``registry.entries("detector", stage="data",
        unit="sample")``), each optionally paired with parameters for it.
    contamination : float
        Fraction quarantined by the combined ranking; also the threshold of detectors that take a
        number (those with a rule of their own -- activation clustering, label issues,
        duplicates -- apply it).
    raw_input_duplicates : bool, default=True
        Look for duplicates among the raw inputs (exact copies) rather than the features.
    poison_mask : bool ndarray, optional
        Ground truth, when known (a red-team run): adds detection metrics to the result.
    random_state : int, optional
        Given to every detector that takes a ``random_state`` and was not given one in its
        parameters; None leaves the detectors' defaults.
    emit : callable, optional
        Receives the scan's events: ``StepStarted``/``StepFinished`` (step "scan"), one
        ``DetectorFinished`` per detector, and the reference model's ``BatchEnded`` /
        ``EpochEnded`` (label "reference model").

    Returns
    -------
    ScanResult

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.data import load_digits
    >>> from poisonlab.runs.scan import scan
    >>> train = load_digits().train
    >>> r = scan(train, features=train.X.reshape(len(train), -1), detectors=("robust_outliers",))
    >>> int(r.quarantine.sum()) == int(np.ceil(0.05 * len(train)))
    True
    """
    specs = _detector_specs(detectors)
    emit = emit or ignore
    emit(StepStarted(label=LABEL, step="scan"))
    t0 = time.perf_counter()
    rep_info: dict[str, Any] = {}
    if features is None:
        features, _ = representations(dataset, model=model, layer=layer, architecture=architecture,
                                           config=config, emit=emit)
        rep_info = {"source": "model" if model is not None else "reference model trained on the scanned data",
                    "layer": layer or "penultimate", "dim": int(features.shape[1])}
    else:
        if len(features) != len(dataset):
            raise DataError(f"features have {len(features)} rows but the dataset has {len(dataset)} samples")
        rep_info = {"source": "given features", "dim": int(np.shape(features)[1])}
    seconds = {"representations": time.perf_counter() - t0}
    scores, flags, reports = {}, {}, {}
    for name, given in specs:
        det = registry.create("detector", name, **_detector_params(name, given, contamination, random_state))
        X = features
        if name == "duplicates" and raw_input_duplicates:
            X = dataset.X if dataset.modality == "text" else np.asarray(dataset.X).reshape(len(dataset), -1)
        t = time.perf_counter()
        det.fit(X, dataset.y)
        seconds[name] = time.perf_counter() - t
        scores[name], flags[name] = det.scores_, det.flags_
        if hasattr(det, "class_report_"):
            reports[name] = det.class_report_
        emit(DetectorFinished(label=LABEL, name=name, seconds=seconds[name], n_flagged=int(np.sum(det.flags_))))
    combined = votes_then_rank(np.stack(list(scores.values())), np.stack(list(flags.values())))
    order = np.argsort(-combined, kind="stable")
    n_q = int(np.ceil(contamination * len(dataset)))
    quarantine = np.zeros(len(dataset), dtype=bool)
    quarantine[order[:n_q]] = True
    result = ScanResult(ids=dataset.ids, y=dataset.y, scores=scores, flags=flags, combined=combined,
                        quarantine=quarantine, order=order, seconds=seconds, representation=rep_info,
                        reports=reports, contamination=contamination)
    if poison_mask is not None:
        from ..evaluation.detection import detection_report

        pm = np.asarray(poison_mask, dtype=bool)
        result.evaluation = {name: detection_report(scores[name], flags[name], pm) for name in scores}
        result.evaluation["combined (quarantine)"] = detection_report(combined, quarantine, pm)
    emit(StepFinished(label=LABEL, step="scan", seconds=time.perf_counter() - t0,
                      summary={"n_samples": len(dataset), "n_quarantined": n_q, "detectors": list(scores)}))
    return result


def _detector_specs(detectors: Any) -> list[tuple[str, dict[str, Any]]]:
    """``[(name, params), ...]`` from names or (name, params) pairs; refuses unknown names,
    duplicates and an empty list."""
    if isinstance(detectors, str):
        detectors = [detectors]
    specs = []
    for d in detectors:
        name, params = (d, {}) if isinstance(d, str) else (d[0], dict(d[1] or {}))
        specs.append((name, params))
    names = [n for n, _ in specs]
    usable = sorted(e.name for e in registry.entries("detector", stage="data", unit="sample"))
    unknown = [n for n in names if n not in registry.available("detector")]
    if unknown or not specs:
        raise InvalidParameterError(f"unknown detector(s) {unknown}; available: {usable}")
    other = [n for n in names if n not in usable]
    if other:
        raise InvalidParameterError(f"a data scan runs sample-level detectors; {other} work on other units "
                                    f"(use one of {usable})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidParameterError(f"detectors must be distinct; {repeated} given more than once")
    return specs


def _detector_params(name: str, given: dict[str, Any], contamination: float,
                     random_state: int | None) -> dict[str, Any]:
    """A detector's parameters: the given ones, plus the scan's ``contamination`` (for detectors
    whose threshold is a number by default) and ``random_state`` where it takes them."""
    signature = inspect.signature(registry.get("detector", name)).parameters
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    default = signature.get("contamination")
    if default is not None and default.default != "auto" and "contamination" not in params:
        params["contamination"] = contamination
    if random_state is not None and "random_state" in signature and "random_state" not in params:
        params["random_state"] = random_state
    return params


def retrain_without_quarantine(dataset: Dataset, result: ScanResult, test: Dataset, *, attack: Any = None,
                               architecture: str | None = None, config: Any = None,
                               emit: Emit | None = None) -> dict[str, Any]:
    """Train on all of ``dataset`` and on it less ``result.quarantine``; measure both on ``test``.

    Sets ``result.retrain`` and returns it: ``n_removed``, ``n_kept``, and the ``before`` and
    ``after`` metrics (clean accuracy, plus the attack success rate when ``attack`` -- the attack
    that poisoned ``dataset``, for its trigger -- is known). The two trainings are emitted under
    the labels ``"retrain before"`` and ``"retrain after"``.
    """
    from ..evaluation.experiment import retrain_comparison

    if len(result.quarantine) != len(dataset):
        raise DataError(f"the scan covers {len(result.quarantine)} samples but the dataset has {len(dataset)}")
    emit = emit or ignore
    emit(StepStarted(label=LABEL, step="retrain"))
    t0 = time.perf_counter()
    result.retrain = retrain_comparison(dataset, ~result.quarantine, test, attack=attack,
                                        architecture=architecture, config=config,
                                        progress=lambda label, event, info: training_callback(emit, label)(event, info))
    emit(StepFinished(label=LABEL, step="retrain", seconds=time.perf_counter() - t0,
                      summary={"n_removed": result.retrain["n_removed"]}))
    return result.retrain
