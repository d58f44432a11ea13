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
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .. import registry
from ..data.dataset import Dataset
from ..defenses.data.combine import rank_average, votes_then_rank
from ..defenses.data.evidence import FAMILIES, calibrated_evidence, quarantine_by_evidence, strongest_evidence
from ..exceptions import DataError, InvalidParameterError
from .events import DetectorFinished, Event, StepFinished, StepStarted, ignore, training_callback

Emit = Callable[[Event], None]

#: What a scan runs when the user names no detectors: the detectors whose calibrated rules kept
#: their false alarms down on clean digits, MNIST and SMS Spam (docs/scan.md): activation
#: clustering (clusters; calibrated on the classes and confirmed on the inputs), confident
#: learning in the model's features and in the inputs (labels), conflicting duplicates.
#: Spectral signatures, SPECTRE, robust outliers and k-NN label consistency stay available: on
#: MNIST their calibrated rules flagged 16-125 clean samples per scan and found no poison the
#: default set missed. ``NAME@inputs`` runs a detector on the inputs themselves
#: (:func:`input_view`) instead of the model's features.
DEFAULT_DETECTORS = ("activation_clustering", "label_issues", "label_issues@inputs", "duplicates")

#: Every sample-level detector, for a user who wants all their evidence (and the benchmarks).
ALL_DETECTORS = ("activation_clustering", "spectral", "spectre", "robust_outliers", "knn_label", "label_issues",
                 "label_issues@inputs", "duplicates")

#: How a scan combines its detectors by default (see :func:`scan`).
DEFAULT_COMBINE = "evidence"

#: Epochs of the reference model a scan trains when given no model or features (the CLI's).
DEFAULT_EPOCHS = 10

#: Parameters the evidence combination gives a detector the user did not configure: activation
#: clustering's silhouette test calibrated on the classes (``class_z``), see its docstring.
EVIDENCE_PARAMS: dict[str, dict[str, Any]] = {"activation_clustering": {"class_z": 3.0}}

#: Suffix of a detector run on the inputs rather than on the model's features.
INPUTS = "@inputs"

#: Why a detector flags a sample, in a user's words.
REASONS = {
    "spectral": "spectral outlier along the class's top direction",
    "spectre": "outlier after robust whitening (QUE score)",
    "activation_clustering": "in a small, separate activation cluster of its class",
    "label_issues": "label disagrees with out-of-fold predictions",
    "knn_label": "label disagrees with its nearest neighbours",
    "robust_outliers": "far from its class (robust Mahalanobis)",
    "duplicates": "a copy of another sample with a different label",
    "label_issues@inputs": "label disagrees with out-of-fold predictions from the inputs themselves",
    "knn_label@inputs": "label disagrees with its nearest neighbours among the inputs",
}

#: What the scan's verdict says when nothing passes any detector's own calibrated rule.
NOTHING_FOUND = "nothing found"
#: ... and when something does.
POISON_SUSPECTED = "poison suspected"

#: The label of the scan's events (the reference model's training uses its own).
LABEL = "scan"


@dataclass
class ScanResult:
    """Everything a scan found.

    With ``combine="evidence"`` (the default): ``evidence[name]`` is each detector's calibrated
    evidence (above 1 where its own rule flags the sample), ``combined`` the strongest evidence
    of each sample, ``strongest`` the detector that gave it, ``quarantine`` the samples whose
    strongest evidence exceeds 1 (at most the ``contamination`` budget), ``verdict``
    :data:`POISON_SUSPECTED` or :data:`NOTHING_FOUND`, ``families`` how many quarantined samples
    each family of evidence accounts for. With ``combine="votes"``: ``combined`` = detectors
    flagging a sample + their rank average
    (:func:`~poisonlab.defenses.data.combine.votes_then_rank`) and the quarantine its top
    ``contamination`` share. ``order`` ranks samples by ``combined`` (ties by the rank average),
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
    combine: str = DEFAULT_COMBINE
    evidence: dict[str, np.ndarray] = field(default_factory=dict)
    strongest: np.ndarray | None = None
    verdict: str = NOTHING_FOUND
    families: dict[str, int] = field(default_factory=dict)
    detector_families: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def detectors(self) -> list[str]:
        """The detectors that ran, in order."""
        return list(self.scores)

    def reasons(self, i: int) -> list[str]:
        return [REASONS.get(name, name) for name, f in self.flags.items() if f[i]]

    def summary(self) -> str:
        """The verdict in a sentence a user can act on."""
        n = int(self.quarantine.sum())
        if n == 0:
            return ("Nothing found: no sample passed any detector's own calibrated rule "
                f"({', '.join(self.detectors)}). Poison these detectors cannot see (clean-label "
                "poisons, a few optimised points) would not show here." + "".join(f" Note: {note}" for note in self.notes))
        by = ", ".join(f"{k} by {fam} evidence ({FAMILIES.get(fam, fam)})" for fam, k in self.families.items())
        return f"Poison suspected: {n} of {len(self.y)} samples quarantined: {by}." + \
            "".join(f" Note: {note}" for note in self.notes)

    def table(self, top: int = 20) -> list[dict[str, Any]]:
        """The ``top`` most suspicious samples as rows (id, label, combined score, flaggers, and
        with the evidence combination the strongest evidence's detector and family)."""
        rows = []
        for rank, i in enumerate(self.order[:top], 1):
            row = {"rank": rank, "id": str(self.ids[i]), "label": int(self.y[i]),
                   "score": float(self.combined[i]),
                   "flagged_by": [n for n, f in self.flags.items() if f[i]],
                   "why": self.reasons(int(i)), "quarantined": bool(self.quarantine[i])}
            if self.strongest is not None:
                name = str(self.strongest[i])
                row.update(detector=name, family=self.detector_families.get(name, ""),
                           evidence=float(self.combined[i]))
            rows.append(row)
        return rows

    def to_dict(self, top: int = 20) -> dict[str, Any]:
        """The scan's summary as JSON-friendly data (per-sample arrays left out: see
        :attr:`scores`, :attr:`flags`, :attr:`evidence`, :attr:`combined`)."""
        return {"detectors": self.detectors, "combine": self.combine, "verdict": self.verdict,
                "summary": self.summary(), "notes": self.notes, "families": self.families,
                "detector_families": self.detector_families, "contamination": self.contamination,
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
    from ..models.architectures import default_architecture_for, model_factory
    from ..models.text import Vocabulary
    from ..models.training import TrainConfig

    if model is None:
        vocab = Vocabulary() if dataset.modality == "text" else None
        architecture = architecture or default_architecture_for(dataset.modality, dataset.X)
        model = TorchClassifier(model_factory(architecture, dataset.modality),
                                config=config or TrainConfig(epochs=DEFAULT_EPOCHS), vocabulary=vocab)
        model.fit(dataset.X, dataset.y, callback=training_callback(emit, "reference model"))
    else:
        model = as_classifier(model)
    return model.embed(dataset.X, layer), model


def input_view(dataset: Dataset, *, random_state: int | None = 0) -> np.ndarray:
    """The inputs themselves as a dense ``(n, d)`` array, for detectors that must not look
    through the suspected model (label checks of dirty-label poisons, exclusionary
    reclassification): images and tables flattened; texts as TF-IDF reduced to 100
    dimensions by a seeded truncated SVD (Latent Semantic Analysis); audio (waveforms or MFCCs)
    as the mean and standard deviation over time of 13 MFCCs (:func:`~poisonlab.data.mfcc`),
    standardised; spectrograms ``(n, 1, mels, frames)`` flattened.

    A trigger small against the input (a 3x3 patch on a 28x28 digit, one inserted word) leaves
    a poison looking like the class it came from, while the poisoned model's features put it
    in the target class: that is what the ``@inputs`` detectors see.
    """
    X = dataset.X
    if dataset.modality == "text" or (np.ndim(X) == 1 and np.asarray(X).dtype.kind in "OUS"):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        T = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform([str(t) for t in X])
        k = max(1, min(100, T.shape[1] - 1, len(X) - 1))
        return TruncatedSVD(n_components=k, random_state=0 if random_state is None else random_state).fit_transform(T)
    X = np.asarray(X)
    if dataset.modality == "audio" and X.ndim == 2:
        from ..data import mfcc

        rate = int((dataset.info or {}).get("sample_rate", 8000))
        X = mfcc(X.astype(np.float32), rate)  # (n, 13, frames)
    if dataset.modality == "audio" and X.ndim == 3:
        # the classic summary of a spoken word: each coefficient's mean and spread over time,
        # standardised (a flattened spectrogram is no space for neighbours: a word said a
        # little later is far from itself; on FSDD out-of-fold k-NN accuracy 97% against 85%)
        X = np.concatenate([X.mean(axis=-1), X.std(axis=-1)], axis=1).astype(np.float64)
        return (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    return X.reshape(len(X), -1).astype(np.float64)


def scan(dataset: Dataset, *, features: np.ndarray | None = None, model: Any = None,
         layer: str | None = None, detectors: Sequence[str | tuple[str, dict[str, Any]]] = DEFAULT_DETECTORS,
         contamination: float | None = None, raw_input_duplicates: bool = True,
         architecture: str | None = None, config: Any = None, poison_mask: np.ndarray | None = None,
         random_state: int | None = None, emit: Emit | None = None,
         combine: str = DEFAULT_COMBINE) -> ScanResult:
    """Scan ``dataset`` with ``detectors`` and combine their evidence.

    The default combination (``combine="evidence"``) runs every detector on its own decision
    rule (``contamination="auto"``: the paper's rule, or the tail-excess rule calibrated on the
    detector's score distribution, see :mod:`poisonlab.defenses.data.evidence`), puts each on the
    scale of calibrated evidence (``e > 1`` exactly where its rule flags the sample), and
    quarantines the samples whose *strongest* evidence exceeds 1 -- no vote, so a detector blind
    to an attack by design cannot outvote or dilute one that sees it. Each sample's strongest
    evidence names the detector that gave it and its family (cluster, outlier, label,
    duplicate), hence the kind of attack it points to; ``verdict`` says "nothing found" when no
    sample passes any detector's rule.

    Parameters
    ----------
    dataset : Dataset
    features : ndarray (n, d), optional
        Precomputed representations; else taken from ``model`` (or a reference model).
    model : classifier or nn.Module, optional
        The model whose ``layer`` features are scanned; default: a reference model of
        ``architecture`` (the modality's default) trained on ``dataset`` with ``config``
        (default ``TrainConfig(epochs=DEFAULT_EPOCHS)``, seed 0).
    layer : str, optional
        Layer to read features from (default: the penultimate one).
    detectors : sequence of str or (str, dict)
        Names of sample-level detectors (``registry.entries("detector", stage="data",
        unit="sample")``), each optionally paired with parameters for it; ``NAME@inputs`` runs
        the detector on :func:`input_view` of the inputs instead of the features.
    contamination : float, optional
        The quarantine's budget: at most this fraction of the samples, the strongest evidence
        first (None: no cap). With ``combine="votes"``, the fraction quarantined (None: 0.05) and
        the threshold of the detectors that take a number.
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
    combine : {"evidence", "votes"}, default="evidence"
        "votes": the earlier combination (detectors flagging a sample plus their rank average,
        the top ``contamination`` quarantined), kept for comparison; on the README's BadNets
        digits it quarantined 37% of the poisons, where activation clustering alone found all.

    Returns
    -------
    ScanResult

    Limits
    ------
    Clean-label poisons (correct labels; SIG, feature collision, gradient matching) are not
    separated by these detectors in the measurements of ``docs/scan.md``, nor are dirty-label
    poisons that outnumber the clean samples of the class they came from (label evidence then
    points the wrong way). The tail-excess rule needs at least two classes.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.data import load_digits
    >>> from poisonlab.runs.scan import scan
    >>> train = load_digits().train
    >>> r = scan(train, features=train.X.reshape(len(train), -1), detectors=("label_issues", "duplicates"))
    >>> r.verdict, int(r.quarantine.sum())
    ('nothing found', 0)
    >>> y = train.y.copy(); y[:20] = (y[:20] + 1) % 10           # 20 flipped labels
    >>> r = scan(train.with_arrays(y=y), features=train.X.reshape(len(train), -1),
    ...          detectors=("label_issues", "duplicates"))
    >>> r.verdict, int(r.quarantine[:20].sum()), int(r.quarantine[20:].sum())  # all 20, and 5 odd digits
    ('poison suspected', 20, 5)
    """
    if combine not in ("evidence", "votes"):
        raise InvalidParameterError(f"combine must be 'evidence' or 'votes'; got {combine!r}")
    if contamination is not None:
        from .._validation import check_param
        from ..base import CONTAMINATION

        check_param(contamination, CONTAMINATION, "contamination")
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
    view = None
    wants_view = any(name.endswith(INPUTS) for name, _ in specs) or (
        combine == "evidence" and any(name == "activation_clustering" for name, _ in specs))
    if wants_view:
        t = time.perf_counter()
        view = input_view(dataset, random_state=random_state)
        seconds["input view"] = time.perf_counter() - t
    scores, flags, reports, evidence, fam = {}, {}, {}, {}, {}
    for name, given in specs:
        base = name[:-len(INPUTS)] if name.endswith(INPUTS) else name
        det = registry.create("detector", base, **_detector_params(base, given, contamination, random_state, combine))
        X = view if name.endswith(INPUTS) else features
        kw = {}
        if base == "duplicates" and raw_input_duplicates and not name.endswith(INPUTS):
            X = dataset.X if dataset.modality == "text" else np.asarray(dataset.X).reshape(len(dataset), -1)
        if base == "activation_clustering" and combine == "evidence" and view is not None:
            kw["inputs"] = view  # the paper's exclusionary reclassification confirms a flagged class
        t = time.perf_counter()
        det.fit(X, dataset.y, **kw)
        seconds[name] = time.perf_counter() - t
        scores[name], flags[name] = det.scores_, det.flags_
        evidence[name] = det.evidence_ if hasattr(det, "evidence_") else calibrated_evidence(det.scores_, det.threshold_)
        fam[name] = getattr(det, "family", "other")
        if hasattr(det, "class_report_"):
            reports[name] = det.class_report_
        emit(DetectorFinished(label=LABEL, name=name, seconds=seconds[name], n_flagged=int(np.sum(det.flags_))))
    S = np.stack(list(scores.values()))
    tie = rank_average(S)
    n = len(dataset)
    strongest_by, families = None, {}
    if combine == "evidence":
        combined, strongest_by = strongest_evidence(np.stack(list(evidence.values())), list(evidence))
        budget = None if contamination is None else int(np.ceil(contamination * n))
        quarantine = quarantine_by_evidence(combined, budget=budget)
        for name in strongest_by[quarantine]:
            families[fam[name]] = families.get(fam[name], 0) + 1
    else:
        combined = votes_then_rank(S, np.stack(list(flags.values())))
        quarantine = np.zeros(n, dtype=bool)
        quarantine[np.argsort(-combined, kind="stable")[:int(np.ceil((contamination or 0.05) * n))]] = True
    order = np.lexsort((-tie, -combined))
    notes = _notes(dataset, fam, families, n, combine)
    result = ScanResult(ids=dataset.ids, y=dataset.y, scores=scores, flags=flags, combined=combined,
                        quarantine=quarantine, order=order, seconds=seconds, representation=rep_info,
                        reports=reports, contamination=contamination, combine=combine,
                        evidence=evidence if combine == "evidence" else {}, strongest=strongest_by,
                        verdict=POISON_SUSPECTED if quarantine.any() else NOTHING_FOUND,
                        families=dict(sorted(families.items(), key=lambda kv: -kv[1])),
                        detector_families=fam, notes=notes)
    if poison_mask is not None:
        from ..evaluation.detection import detection_report

        pm = np.asarray(poison_mask, dtype=bool)
        if len(pm) != n:
            raise DataError(f"poison_mask has {len(pm)} entries but the dataset has {n} samples")
        result.evaluation = {name: detection_report(scores[name], flags[name], pm) for name in scores}
        result.evaluation["combined (quarantine)"] = detection_report(combined, quarantine, pm)
    emit(StepFinished(label=LABEL, step="scan", seconds=time.perf_counter() - t0,
                      summary={"n_samples": n, "n_quarantined": int(quarantine.sum()), "detectors": list(scores),
                               "verdict": result.verdict, "families": result.families}))
    return result


#: Share of the data quarantined by label evidence above which the scan warns that it may be the
#: data's own label noise (poisoning rarely touches more; Adult's clean labels exceed it).
LABEL_NOISE_SHARE = 0.05


def _notes(dataset: Dataset, fam: dict[str, str], families: dict[str, int], n: int, combine: str) -> list[str]:
    """What the verdict must say besides the counts: evidence that could not be calibrated here,
    and label evidence that looks like the data's own noise."""
    from ..defenses.data.evidence import MIN_CLASSES

    notes = []
    if combine != "evidence":
        return notes
    n_classes = len(np.unique(dataset.y))
    uncal = [d for d, f in fam.items() if f in ("cluster", "outlier")]
    if uncal and n_classes < MIN_CLASSES:
        notes.append(f"{', '.join(uncal)} calibrate on the classes and need at least {MIN_CLASSES}; this data has "
                     f"{n_classes}, so they flag nothing (only label and duplicate evidence can quarantine).")
    label = families.get("label", 0)
    if label > LABEL_NOISE_SHARE * n:
        notes.append(f"label evidence quarantines {label} samples ({label / n:.0%}): more than poisoning usually "
                     "touches; where the features do not determine the label (census income, sentiment), "
                     "these are the data's own label issues, not necessarily poison.")
    return notes


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
    bases = [n[:-len(INPUTS)] if isinstance(n, str) and n.endswith(INPUTS) else n for n in names]
    usable = sorted(e.name for e in registry.entries("detector", stage="data", unit="sample"))
    unknown = [n for n, b in zip(names, bases) if b not in registry.available("detector")]
    if unknown or not specs:
        raise InvalidParameterError(f"unknown detector(s) {unknown}; available: {usable}")
    other = [b for b in bases if b not in usable]
    if other:
        raise InvalidParameterError(f"a data scan runs sample-level detectors; {other} work on other units "
                                    f"(use one of {usable})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidParameterError(f"detectors must be distinct; {repeated} given more than once")
    return specs


def _detector_params(name: str, given: dict[str, Any], contamination: float | None,
                     random_state: int | None, combine: str = DEFAULT_COMBINE) -> dict[str, Any]:
    """A detector's parameters: the given ones, plus its threshold and ``random_state``.

    ``combine="evidence"``: every detector that has a rule of its own runs on it
    (``contamination="auto"``), with :data:`EVIDENCE_PARAMS`. ``"votes"``: the scan's
    ``contamination`` (default 0.05) for detectors whose threshold is a number by default."""
    cls = registry.get("detector", name)
    signature = inspect.signature(cls).parameters
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    default = signature.get("contamination")
    if combine == "evidence":
        if default is not None and "contamination" not in params and _accepts_auto(cls):
            params["contamination"] = "auto"
        for k, v in EVIDENCE_PARAMS.get(name, {}).items():
            params.setdefault(k, v)
    elif default is not None and default.default != "auto" and "contamination" not in params:
        params["contamination"] = 0.05 if contamination is None else contamination
    if random_state is not None and "random_state" in signature and "random_state" not in params:
        params["random_state"] = random_state
    return params


def _accepts_auto(cls: Any) -> bool:
    from .._validation import check_param
    from ..exceptions import PoisonlabError

    try:
        check_param("auto", cls._parameter_constraints.get("contamination", []), "contamination")
    except PoisonlabError:
        return False
    return True


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


def scan_record(ds, result, *, poison_mask=None, top: int = 20, scenario: dict[str, Any],
                data_files: Iterable[Any] = ()) -> dict[str, Any]:
    """The run record (kind ``"scan"``) of a data scan (``poisonlab scan-data`` writes it as ``record.json``): :meth:`ScanResult.to_dict`, the
    dataset's summary and class names, and what a report shows of the scores and samples
    (:func:`poisonlab.runs.report_data.scan_evidence`: histograms, ROC points, the top
    ``min(top, 24)`` samples' inputs; bounded in size whatever the data's)."""
    from .._files import to_jsonable
    from .record import make_record
    from .report_data import MAX_TOP, scan_evidence

    results = {**result.to_dict(top), "dataset": ds.summary(), "classes": list(ds.classes),
               "evidence": scan_evidence(ds, result, poison_mask, k=min(top, MAX_TOP))}
    return make_record(kind="scan", scenario=to_jsonable(scenario), results=to_jsonable(results),
                       timings=to_jsonable(dict(result.seconds)),
                       data_files=[p for p in data_files if p is not None])
