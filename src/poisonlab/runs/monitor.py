"""Watch a deployed model: fit STRIP on clean inputs, save it, load it elsewhere, score batches.

A saved monitor is a folder holding the detector (``strip.json`` + ``strip.npz``, from
:meth:`STRIP.save <poisonlab.defenses.inference.STRIP.save>`) and the model it watches
(``model.safetensors`` with its model card, from :func:`poisonlab.models.io.save_model`); nothing
in it is pickled. :func:`fit_monitor` and :func:`score_batch` are the workflows behind
``poisonlab monitor fit`` and ``poisonlab monitor score``; only :func:`save_monitor` writes files.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.dataset import Dataset
from ..exceptions import DataError
from .events import Event, StepFinished, StepStarted, ignore

Emit = Callable[[Event], None]

#: The model's file inside a saved monitor (the detector's files are STRIP's own).
MODEL_FILE = "model.safetensors"
#: The label of this workflow's events.
LABEL = "monitor"


@dataclass
class FittedMonitor:
    """A fitted STRIP and what saving it needs.

    Attributes
    ----------
    detector : STRIP
        Fitted; ``threshold_`` is its decision boundary.
    module : nn.Module
        The watched model's torch module (saved beside the detector).
    architecture : str
        Its registered architecture name.
    spec : ModelSpec
        Its input shape and number of classes.
    card : ModelCard or None
        The card the weights came with, if any (its provenance is carried over when saving).
    info : dict
        What the monitor was fitted on (dataset, number of clean inputs, file safety).
    """

    detector: Any
    module: Any
    architecture: str
    spec: Any
    card: Any = None
    info: dict[str, Any] = field(default_factory=dict)


def fit_monitor(model: str | os.PathLike, clean: Dataset, *, architecture: str | None = None,
                n_clean: int = 2000, n_overlays: int = 100, false_positive_rate: float = 0.01,
                boundary: str = "quantile", early_stop: float | None = None, seed: int = 0,
                emit: Emit | None = None) -> FittedMonitor:
    """Fit STRIP for the model in ``model`` on the first ``n_clean`` inputs of ``clean``.

    Parameters
    ----------
    model : path
        Model weights: ``.safetensors`` (with or without a card) or a pickle-based file, scanned
        first (:func:`~poisonlab.runs.model_scan.load_checked_model`).
    clean : Dataset
        Clean held-out inputs of the task (half become the overlay pool, half the references
        that set the threshold).
    architecture : str, optional
        Architecture of the weights (default: the card's, else the modality's).
    n_clean, n_overlays, false_positive_rate, boundary, early_stop, seed
        As :class:`~poisonlab.defenses.inference.STRIP` (``seed`` is its ``random_state``).
    emit : callable, optional
        Receives ``StepStarted``/``StepFinished`` of step "fit".

    Returns
    -------
    FittedMonitor
    """
    from ..defenses.inference import STRIP
    from ..models.adapters import TorchClassifier
    from ..models.architectures import ModelSpec
    from .model_scan import load_checked_model

    emit = emit or ignore
    spec = ModelSpec(tuple(clean.X.shape[1:]), clean.n_classes)
    checked = load_checked_model(model, architecture=architecture, spec=spec, modality=clean.modality)
    emit(StepStarted(label=LABEL, step="fit"))
    t0 = time.perf_counter()
    vocabulary = None
    if checked.card is not None and checked.card.vocabulary is not None:
        from ..models.text import Vocabulary

        vocabulary = Vocabulary.from_dict(checked.card.vocabulary)
    det = STRIP(n_overlays=n_overlays, false_positive_rate=false_positive_rate, boundary=boundary,
                early_stop=early_stop, random_state=seed).fit(
        clean.X[:n_clean], model=TorchClassifier.from_trained(checked.module, vocabulary=vocabulary))
    emit(StepFinished(label=LABEL, step="fit", seconds=time.perf_counter() - t0,
                      summary={"threshold": det.threshold_, "n_clean": int(min(n_clean, len(clean)))}))
    info = {"dataset": clean.name, "modality": clean.modality, "n_clean": int(min(n_clean, len(clean))),
            "file_safety": checked.file_safety.to_dict()}
    return FittedMonitor(detector=det, module=checked.module, architecture=checked.architecture,
                         spec=spec, card=checked.card, info=info)


def save_monitor(directory: str | os.PathLike, monitor: FittedMonitor) -> Path:
    """Write ``monitor`` to ``directory``: STRIP's files and ``model.safetensors`` with its card.
    Returns the folder; :func:`load_monitor` reads it back."""
    from ..models.io import save_model

    folder = Path(directory)
    monitor.detector.save(folder)
    card = monitor.card
    kept: dict[str, Any] = {}
    if card is not None:  # the watched model's provenance travels with it
        kept = {"config": card.train_config, "data_sha256": card.data_sha256, "n_samples": card.n_samples,
                "metrics": card.metrics, "class_names": card.class_names,
                "modality": card.modality}
        if card.architecture == monitor.architecture:
            kept["architecture_kwargs"] = card.architecture_kwargs
        if card.vocabulary is not None:
            from ..models.text import Vocabulary

            kept["vocabulary"] = Vocabulary.from_dict(card.vocabulary)
    kept.setdefault("modality", monitor.info.get("modality"))
    save_model(monitor.module, folder / MODEL_FILE, architecture=monitor.architecture,
               spec=card.spec if card is not None else monitor.spec,
               extra={**(card.extra if card is not None else {}), "monitor": "strip", **monitor.info}, **kept)
    return folder


def load_monitor(directory: str | os.PathLike) -> Any:
    """A monitor saved by :func:`save_monitor` (or ``poisonlab monitor fit``), ready to score:
    the fitted STRIP with its model loaded; nothing is unpickled."""
    from ..defenses.inference import STRIP

    folder = Path(directory)
    if not folder.is_dir():
        raise DataError(f"monitor folder {folder} does not exist")
    if not (folder / STRIP.STATE_FILE).is_file() and (folder / "monitor.json").is_file():
        raise DataError(f"{folder} was saved by an older poisonlab (monitor.json + pool.npz); refit it "
                        f"with 'poisonlab monitor fit'")
    arrays = folder / STRIP.ARRAYS_FILE
    if arrays.is_file():  # a damaged archive is a one-line DataError here, whatever zipfile raises
        from ..data import npz_member, open_npz

        with open_npz(arrays) as z:
            for key in z.files:
                npz_member(z, key, arrays)
    return STRIP.load(folder)


@dataclass
class MonitorScores:
    """What :func:`score_batch` found: one score, flag and overlay count per input."""

    scores: np.ndarray
    flags: np.ndarray
    overlays: np.ndarray
    threshold: float

    @property
    def flagged(self) -> np.ndarray:
        """Indices of the flagged inputs."""
        return np.flatnonzero(self.flags)


def read_batch(path: str | os.PathLike, key: str = "X") -> np.ndarray:
    """The inputs stored under ``key`` in a ``.npz`` (never unpickled); a missing, corrupt,
    truncated or empty file is a one-line ``DataError``."""
    from ..data import npz_member, open_npz

    path = Path(path)
    with open_npz(path) as z:
        if key not in z.files:
            raise DataError(f"{path} must hold the inputs under {key!r}; found {z.files}")
        X = npz_member(z, key, path)
    if X.ndim == 0 or X.dtype.kind not in "biufU":
        raise DataError(f"{path}: {key!r} must be an array of inputs (numbers, or texts as a unicode "
                        f"array); got {X.dtype} of shape {X.shape}")
    if len(X) == 0:
        raise DataError(f"{path} holds an empty batch ({key!r} has 0 inputs): nothing to score")
    return X


def score_batch(monitor: Any, X: Any, *, emit: Emit | None = None) -> MonitorScores:
    """Score a batch of live inputs with a fitted monitor.

    Parameters
    ----------
    monitor : STRIP or path
        A fitted detector, or a folder written by :func:`save_monitor`.
    X : array
        The inputs (shaped as the clean inputs the monitor was fitted on).
    emit : callable, optional
        Receives ``StepStarted``/``StepFinished`` of step "score".

    Returns
    -------
    MonitorScores
        ``flags`` is ``scores > threshold`` (the detector's own rule).
    """
    emit = emit or ignore
    det = load_monitor(monitor) if isinstance(monitor, (str, os.PathLike)) else monitor
    emit(StepStarted(label=LABEL, step="score"))
    t0 = time.perf_counter()
    scores, used = det.score(X, return_overlays=True)
    flags = scores > det.threshold_
    emit(StepFinished(label=LABEL, step="score", seconds=time.perf_counter() - t0,
                      summary={"n_inputs": int(len(scores)), "n_flagged": int(flags.sum())}))
    return MonitorScores(scores=np.asarray(scores), flags=flags, overlays=np.asarray(used),
                         threshold=float(det.threshold_))
