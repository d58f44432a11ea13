"""The data scan: rank every training sample by how likely it is poisoned, say why, quarantine
the worst, and (optionally) retrain without them.

Representations come from the user's model (a named layer) or from a reference model trained
on the data under suspicion -- what a defender has: the poisoned model itself is the lens that
makes backdoor poisons stand out (Tran et al. 2018; Chen et al. 2018).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ... import registry
from ...data.dataset import Dataset
from ...exceptions import DataError, InvalidParameterError
from .combine import votes_then_rank

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


def representations(dataset: Dataset, *, model: Any = None, layer: str | None = None,
                    architecture: str | None = None, config: Any = None,
                    progress: Callable[[str, dict], None] | None = None) -> tuple[np.ndarray, Any]:
    """Penultimate (or ``layer``) features of every sample, and the model they came from.

    With no ``model``, a reference model for the modality is trained on ``dataset`` itself.
    """
    from ...evaluation.experiment import model_factory
    from ...models.adapters import TorchClassifier, as_classifier
    from ...models.text import Vocabulary
    from ...models.training import TrainConfig

    if model is None:
        vocab = Vocabulary() if dataset.modality == "text" else None
        model = TorchClassifier(model_factory(architecture, dataset.modality),
                                config=config or TrainConfig(epochs=5), vocabulary=vocab)
        model.fit(dataset.X, dataset.y, callback=progress)
    else:
        model = as_classifier(model)
    return model.embed(dataset.X, layer), model


def scan(dataset: Dataset, *, features: np.ndarray | None = None, model: Any = None,
         layer: str | None = None, detectors: Sequence[str] = DEFAULT_DETECTORS,
         contamination: float = 0.05, raw_input_duplicates: bool = True,
         architecture: str | None = None, config: Any = None, poison_mask: np.ndarray | None = None,
         progress: Callable[[str, dict], None] | None = None) -> ScanResult:
    """Scan ``dataset`` with ``detectors`` and combine them into one ranking.

    Parameters
    ----------
    dataset : Dataset
    features : ndarray (n, d), optional
        Precomputed representations; else taken from ``model`` (or a reference model).
    detectors : names from the detector registry.
    contamination : float
        Fraction quarantined by the combined ranking; also the threshold of detectors that take a
        number (those with a rule of their own -- activation clustering, label issues,
        duplicates -- apply it).
    raw_input_duplicates : bool, default=True
        Look for duplicates among the raw inputs (exact copies) rather than the features.
    poison_mask : bool ndarray, optional
        Ground truth, when known (a red-team run): adds detection metrics to the result.
    """
    unknown = [d for d in detectors if d not in registry.available("detector")]
    if unknown or not detectors:
        raise InvalidParameterError(f"unknown detector(s) {unknown}; available: "
                                    f"{sorted(registry.available('detector'))}")
    t0 = time.perf_counter()
    rep_info: dict[str, Any] = {}
    if features is None:
        features, fitted = representations(dataset, model=model, layer=layer, architecture=architecture,
                                           config=config, progress=progress)
        rep_info = {"source": "model" if model is not None else "reference model trained on the scanned data",
                    "layer": layer or "penultimate", "dim": int(features.shape[1])}
    else:
        if len(features) != len(dataset):
            raise DataError(f"features have {len(features)} rows but the dataset has {len(dataset)} samples")
        rep_info = {"source": "given features", "dim": int(np.shape(features)[1])}
    seconds = {"representations": time.perf_counter() - t0}
    scores, flags, reports = {}, {}, {}
    for name in detectors:
        cls = registry.get("detector", name)
        params = {}
        default = inspect.signature(cls).parameters.get("contamination")
        if default is not None and default.default != "auto":
            params["contamination"] = contamination
        det = cls(**params)
        X = features
        if name == "duplicates" and raw_input_duplicates:
            X = dataset.X if dataset.modality == "text" else np.asarray(dataset.X).reshape(len(dataset), -1)
        t = time.perf_counter()
        det.fit(X, dataset.y)
        seconds[name] = time.perf_counter() - t
        scores[name], flags[name] = det.scores_, det.flags_
        if hasattr(det, "class_report_"):
            reports[name] = det.class_report_
        if progress is not None:
            progress("detector", {"name": name, "seconds": seconds[name]})
    combined = votes_then_rank(np.stack(list(scores.values())), np.stack(list(flags.values())))
    order = np.argsort(-combined, kind="stable")
    n_q = int(np.ceil(contamination * len(dataset)))
    quarantine = np.zeros(len(dataset), dtype=bool)
    quarantine[order[:n_q]] = True
    result = ScanResult(ids=dataset.ids, y=dataset.y, scores=scores, flags=flags, combined=combined,
                        quarantine=quarantine, order=order, seconds=seconds, representation=rep_info,
                        reports=reports)
    if poison_mask is not None:
        from ...evaluation.detection import detection_report

        pm = np.asarray(poison_mask, dtype=bool)
        result.evaluation = {name: detection_report(scores[name], flags[name], pm) for name in scores}
        result.evaluation["combined (quarantine)"] = detection_report(combined, quarantine, pm)
    return result
