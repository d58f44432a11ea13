"""Inspect a finished model: check its file for code, look for a backdoor with Neural Cleanse,
and (optionally) repair it by unlearning the reversed trigger or by fine-pruning.

A workflow of the run layer: it loads weights safely (:func:`load_checked_model`), runs the
model-stage defenses (``defenses.model``) and returns everything it found as a
:class:`ModelScanResult`; it writes nothing (the CLI writes the report, the trigger pictures and
the repaired weights) and reports progress through typed events.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..data.dataset import Dataset
from ..exceptions import AssumptionError, DataError, InvalidParameterError
from .events import Event, Note, StepFinished, StepStarted, ignore, training_callback

Emit = Callable[[Event], None]

#: Repairs :func:`scan_model` can make.
REPAIRS = ("unlearn", "prune")
#: Suffixes of safetensors files (loaded through ``models.io``; no code can hide in them).
SAFE_SUFFIX = ".safetensors"
#: The label of this workflow's events.
LABEL = "scan-model"


@dataclass
class CheckedModel:
    """Weights loaded after a file-safety scan.

    Attributes
    ----------
    module : nn.Module
        The model, in eval mode.
    file_safety : FileScanReport
        What the scan of the file found (``safe`` is True: unsafe files are refused).
    architecture : str
        The architecture the weights were loaded into.
    card : ModelCard or None
        The model card saved beside safetensors weights, when there is one.
    """

    module: Any
    file_safety: Any
    architecture: str
    card: Any = None


def load_checked_model(path: str | os.PathLike, *, architecture: str | None = None, spec: Any = None,
                       modality: str | None = None) -> CheckedModel:
    """Scan a model file, refuse it if unsafe, then load its weights into an architecture.

    Parameters
    ----------
    path : path
        ``.safetensors`` (loaded with :func:`poisonlab.models.io.load_model`, its model card
        read when present), or a pickle-based ``.pt``/``.pth``/``.bin``/``.ckpt`` (scanned with
        picklescan, refused if it imports anything dangerous, then read with torch's
        weights-only unpickler: :func:`poisonlab.defenses.model.load_state_dict`).
    architecture : str, optional
        Registered architecture name; default: the card's, else the default of ``modality``.
    spec : ModelSpec, optional
        Input shape and number of classes of the data, required for weights without a card.
        With a card, the card's spec is used and ``spec`` is checked against it.
    modality : str, optional
        Picks the default architecture when neither ``architecture`` nor a card names one.

    Returns
    -------
    CheckedModel

    Raises
    ------
    UnsafeModelError
        The file would run code if unpickled, or could not be scanned (its ``report`` says why).
    DataError
        The file is missing or unreadable, its weights do not fit the architecture, or its card
        disagrees with ``spec``.
    InvalidParameterError
        Weights without a card and no ``spec``, or no ``architecture`` nor ``modality``.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from poisonlab.models import ModelSpec, build_model, save_model
    >>> spec = ModelSpec((4,), 3)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> _ = save_model(build_model("mlp", spec), path, architecture="mlp", spec=spec)
    >>> checked = load_checked_model(path)
    >>> checked.architecture, checked.file_safety.safe, checked.card.n_classes
    ('mlp', True, 3)
    """
    from ..defenses.model import UnsafeModelError, load_state_dict, scan_model_file
    from ..models.architectures import DEFAULT_ARCHITECTURE

    path = Path(path)
    report = scan_model_file(path)
    if not report.safe:
        raise UnsafeModelError(report.summary(), report)
    if report.format == "safetensors":
        from ..models.io import load_model, read_card

        card = read_card(path)
        if card is not None:
            if spec is not None:
                _check_spec(card, spec, path)
            module, card = load_model(path, architecture=architecture)
            return CheckedModel(module=module, file_safety=report, architecture=architecture or card.architecture,
                                card=card)
        name = _architecture(path, architecture, spec, modality, DEFAULT_ARCHITECTURE)
        module, _ = load_model(path, architecture=name, spec=spec)
        return CheckedModel(module=module, file_safety=report, architecture=name)
    name = _architecture(path, architecture, spec, modality, DEFAULT_ARCHITECTURE)
    state = load_state_dict(path)  # scans again, then torch's weights-only unpickler
    module = _build(name, spec)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(f"weights in {path} do not fit architecture {name!r}: "
                        f"{str(exc).strip().splitlines()[0]}") from exc
    return CheckedModel(module=module.eval(), file_safety=report, architecture=name)


def _architecture(path: Path, architecture: str | None, spec: Any, modality: str | None,
                  defaults: dict[str, str]) -> str:
    """The architecture for weights without a card, or a one-line error saying what is missing."""
    if spec is None:
        raise InvalidParameterError(f"{path.name} has no model card: give spec= (input shape and number "
                                    f"of classes)")
    if architecture is not None:
        return architecture
    if modality not in defaults:
        raise InvalidParameterError(f"{path.name} has no model card: give architecture= or modality=")
    from ..models.architectures import default_architecture_for

    return default_architecture_for(modality, np.empty((0, *spec.input_shape)))


def _build(name: str, spec: Any) -> Any:
    """``build_model(name, spec)`` without touching the global torch RNG."""
    import torch

    from ..models.architectures import build_model

    with torch.random.fork_rng(devices=[]):
        return build_model(name, spec)


def _check_spec(card: Any, spec: Any, path: Path) -> None:
    """Refuse a card made for other data than ``spec`` describes."""
    if card.n_classes != spec.n_classes:
        raise DataError(f"the model card of {path.name} says {card.n_classes} classes; the data has "
                        f"{spec.n_classes}")
    if card.vocab_size is None and spec.vocab_size is None and tuple(card.input_shape) != tuple(spec.input_shape):
        raise DataError(f"the model card of {path.name} says inputs of shape {tuple(card.input_shape)}; "
                        f"the data's are {tuple(spec.input_shape)}")


@dataclass
class ModelScanResult:
    """What :func:`scan_model` found.

    Attributes
    ----------
    report : dict
        JSON-friendly: ``model``, ``file_safety``, ``dataset``, ``l1_norms``, ``anomaly_index``,
        ``flagged_classes``, ``reached_threshold``, ``verdict``, and ``repair`` when one was made.
    detector : NeuralCleanse
        The fitted detector: its reversed triggers are ``masks_`` and ``patterns_``.
    flagged : list of int
        Classes that need an abnormally small trigger (anomaly index above 2).
    verdict : str
        One sentence for the user.
    module : nn.Module
        The scanned model.
    checked : CheckedModel or None
        The loaded model and its file-safety report (None when a module was given).
    repaired : nn.Module or None
        The repaired copy, when ``repair`` was asked for and a class was flagged.
    seconds : dict
        Time of each step.
    """

    report: dict[str, Any]
    detector: Any
    flagged: list[int]
    verdict: str
    module: Any = None
    checked: CheckedModel | None = None
    repaired: Any = None
    seconds: dict[str, float] = field(default_factory=dict)


def scan_model(model: Any, test: Dataset, *, train: Dataset | None = None, architecture: str | None = None,
               n_clean: int = 500, epochs: int = 100, repair: str | None = None, seed: int = 0,
               dataset_name: str | None = None, emit: Emit | None = None) -> ModelScanResult:
    """Check a model for a backdoor with Neural Cleanse; optionally repair it.

    Parameters
    ----------
    model : path or nn.Module
        A weights file (scanned and loaded by :func:`load_checked_model`; unsafe files raise
        ``UnsafeModelError``) or a torch module.
    test : Dataset
        Clean images the model was trained for: Neural Cleanse optimises its triggers on the
        first ``n_clean``; fine-pruning validates on the next 2000.
    train : Dataset, optional
        Clean training data for the repair (its first 10000 samples); required with ``repair``.
    architecture : str, optional
        Architecture of the weights (default: the card's, else the modality's).
    n_clean : int, default=500
    epochs : int, default=100
        Neural Cleanse's optimisation epochs at most (each class stops when it converges; a run
        where some class did not converge is reported as inconclusive, never as a backdoor).
    repair : {"unlearn", "prune"}, optional
        "unlearn": fine-tune a copy for one epoch on clean data stamped with the reversed
        trigger(s), true labels kept (Wang et al. 2019, Sec. VI-C); "prune": fine-pruning (Liu et
        al. 2018). Made only when a class is flagged.
    seed : int, default=0
    dataset_name : str, optional
        Recorded in the report.
    emit : callable, optional
        Receives a ``Note`` with the file-safety summary, ``StepStarted``/``StepFinished`` of
        "neural cleanse" and "repair", and Neural Cleanse's ``EpochEnded`` (label "neural cleanse").

    Returns
    -------
    ModelScanResult
    """
    from ..defenses.model import NeuralCleanse, fine_prune
    from ..models.adapters import TorchClassifier
    from ..models.architectures import ModelSpec

    if repair not in (None, *REPAIRS):
        raise InvalidParameterError(f"repair must be one of {REPAIRS} or None; got {repair!r}")
    if repair is not None and train is None:
        raise InvalidParameterError("repair needs clean training data: pass train=")
    if test.modality != "image":
        raise AssumptionError("Neural Cleanse reverse-engineers image triggers; this dataset is "
                              f"{test.modality}")
    emit = emit or ignore
    seconds: dict[str, float] = {}
    checked = None
    if isinstance(model, (str, os.PathLike)):
        t0 = time.perf_counter()
        checked = load_checked_model(model, architecture=architecture, modality=test.modality,
                                     spec=ModelSpec(tuple(test.X.shape[1:]), test.n_classes))
        seconds["load"] = time.perf_counter() - t0
        emit(Note(label=LABEL, text=f"file safety: {checked.file_safety.summary()}"))
        module, source = checked.module, os.fspath(model)
    else:
        module, source = model, f"<{type(model).__name__}>"
    clf = TorchClassifier.from_trained(module, n_classes=test.n_classes)
    emit(StepStarted(label=LABEL, step="neural cleanse"))
    t0 = time.perf_counter()
    nc = NeuralCleanse(epochs=epochs, random_state=seed).fit(
        test.X[:n_clean], model=clf, callback=training_callback(emit, "neural cleanse"))
    seconds["neural cleanse"] = time.perf_counter() - t0
    flagged = np.flatnonzero(nc.flags_).tolist()
    if not getattr(nc, "conclusive_", True):
        verdict = f"inconclusive: {nc.warning_}"
    elif flagged:
        gap = f", a mask {nc.min_gap}x smaller than any other class's" if nc.min_gap else ""
        verdict = f"backdoor suspected: class(es) {flagged} need an abnormally small trigger (anomaly index > 2{gap})"
    else:
        verdict = "no class needs an abnormally small trigger (no index > 2" + (
            f" with a mask {nc.min_gap}x smaller than any other class's)" if nc.min_gap else ")")
    emit(StepFinished(label=LABEL, step="neural cleanse", seconds=seconds["neural cleanse"],
                      summary={"flagged_classes": flagged}))
    report: dict[str, Any] = {
        "model": source, "file_safety": checked.file_safety.to_dict() if checked else None,
        "dataset": dataset_name if dataset_name is not None else test.name,
        "l1_norms": nc.l1_norms_.tolist(), "anomaly_index": nc.anomaly_index_.tolist(),
        "mask_gap": nc.gap_.tolist(), "min_gap": nc.min_gap, "flagged_classes": flagged,
        "reached_threshold": np.asarray(nc.reached_threshold_).tolist(),
        "converged": np.asarray(getattr(nc, "converged_", [])).tolist(),
        "conclusive": bool(getattr(nc, "conclusive_", True)), "verdict": verdict}
    repaired = None
    if repair and flagged:
        emit(StepStarted(label=LABEL, step="repair"))
        t0 = time.perf_counter()
        X, y = train.X[:10000], train.y[:10000]
        if repair == "unlearn":
            repaired = nc.unlearn(clf, X, y, epochs=1).module_
            report["repair"] = {"method": "unlearn (reversed trigger, true labels, 1 epoch)"}
        else:
            res = fine_prune(clf, X, y, X_val=test.X[n_clean:n_clean + 2000], y_val=test.y[n_clean:n_clean + 2000])
            repaired = res.model.module_
            report["repair"] = {"method": "fine-pruning", "pruned": res.pruned, "curve": res.curve, "final": res.final}
        seconds["repair"] = time.perf_counter() - t0
        emit(StepFinished(label=LABEL, step="repair", seconds=seconds["repair"], summary={"method": repair}))
    return ModelScanResult(report=report, detector=nc, flagged=flagged, verdict=verdict, module=module,
                           checked=checked, repaired=repaired, seconds=seconds)


def repaired_path(model_path: str | os.PathLike, repair: str) -> Path:
    """Where a repaired copy of ``model_path`` goes: ``<stem>.repaired-<repair>.safetensors`` beside it
    (``<stem>`` is the name up to its first dot). Never the original itself."""
    model_path = Path(model_path)
    stem = model_path.name.split(".")[0]
    target = model_path.with_name(f"{stem}.repaired-{repair}{SAFE_SUFFIX}")
    if target.resolve() == model_path.resolve():
        raise DataError("refusing to write the repair over the original model")
    return target


def load_classifier_for(path: str | os.PathLike, dataset: Dataset, *, architecture: str | None = None) -> Any:
    """A ``.safetensors`` model trained for ``dataset``, ready to query (a TorchClassifier).

    The architecture is ``architecture``, else the model card's, else the default of the
    dataset's modality; weights without a card are built for the dataset's input shape and
    classes. Only safetensors files are read (pickle-based files: :func:`load_checked_model`).
    """
    from ..models.architectures import ModelSpec, default_architecture_for
    from ..models.io import load_classifier, read_card

    card = read_card(path)  # refuses anything but .safetensors
    if card is not None:
        _check_spec(card, ModelSpec(tuple(np.shape(dataset.X)[1:]), dataset.n_classes), Path(path))
        return load_classifier(path, architecture=architecture)
    return load_classifier(path, architecture=architecture or default_architecture_for(dataset.modality, dataset.X),
                           spec=ModelSpec(tuple(np.shape(dataset.X)[1:]), dataset.n_classes))


def model_scan_record(report: dict[str, Any], *, detector=None, classes=None, scenario: dict[str, Any],
                      timings: dict[str, float] | None = None, data_files: Iterable[Any] = ()) -> dict[str, Any]:
    """The run record (kind ``"model_scan"``) of a model scan (``poisonlab scan-model`` writes it
    as ``record.json``): its report, the class names and, when Neural Cleanse ran, every class's
    reversed trigger as a small picture (:func:`poisonlab.runs.report_data.trigger_previews`)."""
    from .._files import to_jsonable
    from .record import make_record
    from .report_data import trigger_previews

    results = dict(report)
    if classes is not None:
        results["classes"] = list(classes)
    if detector is not None and hasattr(detector, "masks_"):
        results["triggers"] = trigger_previews(detector.masks_, detector.patterns_)
    return make_record(kind="model_scan", scenario=to_jsonable(scenario), results=to_jsonable(results),
                       timings=to_jsonable(dict(timings or {})),
                       data_files=[p for p in data_files if p is not None])
