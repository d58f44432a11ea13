"""The one registry: every attack, detector, trainer, aggregator, dataset, architecture and
reproduction by name, with its stage and unit. The CLI, scenarios and the contract tests read it.

Classes register themselves with :func:`register`; other objects (dataset loaders, architecture
builders, reproductions) with :func:`register_object`. :func:`available`, :func:`get`,
:func:`create` and :func:`entries` import the built-in modules of a kind on first use, so that
``import poisonlab`` stays light and this module never imports a higher layer at import time.

Examples
--------
>>> from poisonlab import registry
>>> [e.name for e in registry.entries("detector", stage="inference")]
['strip']
>>> registry.get("attack", "badnets").__name__
'BadNets'
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, TypeVar

from .exceptions import InvalidParameterError

KINDS = ("attack", "detector", "trainer", "aggregator", "dataset", "architecture", "reproduction")
#: Pipeline stages an entry can declare (None: does not apply, e.g. a dataset).
STAGES = ("data", "training", "model", "inference", "federated")
#: Units a detector or defense acts on (None: does not apply).
UNITS = ("sample", "input", "class", "model", "client")
MODALITIES = ("image", "tabular", "text", "audio")
#: Kinds whose entries are classes registered with :func:`register`.
CLASS_KINDS = ("attack", "detector", "trainer", "aggregator")

#: Modules whose import registers the built-in classes. Adding a method = adding its module here.
_BUILTIN_MODULES = (
    "poisonlab.attacks.data.label_flip",
    "poisonlab.attacks.data.badnets",
    "poisonlab.attacks.data.blended",
    "poisonlab.attacks.data.sig",
    "poisonlab.attacks.data.wanet",
    "poisonlab.attacks.data.label_consistent",
    "poisonlab.attacks.data.linear",
    "poisonlab.attacks.data.feature_collision",
    "poisonlab.attacks.data.gradient_matching",
    "poisonlab.attacks.data.text",
    "poisonlab.attacks.data.tabular",
    "poisonlab.attacks.data.bias",
    "poisonlab.attacks.data.audio",
    "poisonlab.attacks.data.dictionary",
    "poisonlab.attacks.data.adversarial_poisoning",
    "poisonlab.attacks.data.unlearnable",
    "poisonlab.attacks.training.procedure",
    "poisonlab.attacks.federated.byzantine",
    "poisonlab.attacks.federated.alie",
    "poisonlab.attacks.federated.ipm",
    "poisonlab.attacks.federated.min_max",
    "poisonlab.attacks.federated.scaling",
    "poisonlab.defenses.data.knn_label",
    "poisonlab.defenses.data.spectral",
    "poisonlab.defenses.data.spectre",
    "poisonlab.defenses.data.activation_clustering",
    "poisonlab.defenses.data.label_issues",
    "poisonlab.defenses.data.robust_outliers",
    "poisonlab.defenses.data.duplicates",
    "poisonlab.defenses.data.combine",
    "poisonlab.defenses.data.subset_disagreement",
    "poisonlab.defenses.inference.strip",
    "poisonlab.defenses.model.neural_cleanse",
    "poisonlab.defenses.federated.basic",
    "poisonlab.defenses.federated.trimmed_mean",
    "poisonlab.defenses.federated.krum",
    "poisonlab.defenses.federated.bulyan",
    "poisonlab.defenses.federated.geometric_median",
    "poisonlab.defenses.federated.centered_clipping",
    "poisonlab.defenses.federated.norm_clipping",
    "poisonlab.defenses.federated.fltrust",
    "poisonlab.defenses.federated.foolsgold",
    "poisonlab.defenses.federated.nnm",
    "poisonlab.defenses.training.partition",
    "poisonlab.defenses.training.finite_aggregation",
    "poisonlab.defenses.training.roni",
    "poisonlab.defenses.training.abl",
    "poisonlab.defenses.training.trimmed_loss",
    "poisonlab.defenses.training.dp_sgd",
)

#: Where the non-class built-ins live (module names: imported on first use only).
_DATA_MODULE = "poisonlab.data"
_ARCHITECTURE_MODULE = "poisonlab.models.architectures"
_REPRODUCTION_PACKAGE = "poisonlab.reproductions"


@dataclass(frozen=True)
class Entry:
    """One registered object and what it is.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    name : str
        The name scenarios, the CLI and :func:`get` use.
    obj : class or callable
        What was registered.
    stage : str or None
        The pipeline stage it works at (:data:`STAGES`); None where it does not apply.
    unit : str or None
        What it scores or alters (:data:`UNITS`); None where it does not apply.
    modalities : tuple of str
        Data modalities it applies to; empty when it does not depend on one (aggregators).
    summary : str
        One line: the docstring's first paragraph unless given.
    meta : mapping
        Kind-specific facts: ``needs_files`` for datasets, ``title``/``paper``/``target`` for
        reproductions.
    """

    kind: str
    name: str
    obj: Any = field(compare=False)
    stage: str | None = None
    unit: str | None = None
    modalities: tuple[str, ...] = ()
    summary: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))


_REGISTRY: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
_loaded: set[str] = set()

T = TypeVar("T", bound=type)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {KINDS}; got {kind!r}")


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InvalidParameterError(f"{name} must be one of {choices} or None; got {value!r}")


def _first_line(obj: Any, limit: int = 60) -> str:
    """The docstring's summary as one short line: its first paragraph up to the first colon or
    parenthesis (where the citation starts), cut at ``limit`` characters."""
    doc = (inspect.getdoc(obj) or "").strip()
    text = " ".join(doc.split("\n\n")[0].split()) if doc else ""
    cut = min((i for i in (text.find(": "), text.find(" (")) if i > 0), default=len(text))
    text = text[:cut].rstrip(" ,;")
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _add(entry: Entry) -> None:
    existing = _REGISTRY[entry.kind].get(entry.name)
    if existing is not None and existing.obj is not entry.obj:
        what = getattr(existing.obj, "__qualname__", type(existing.obj).__name__)
        raise InvalidParameterError(f"{entry.kind} {entry.name!r} is already registered to {what}")
    _REGISTRY[entry.kind][entry.name] = entry


def register(kind: str, name: str, *, stage: str | None = None, unit: str | None = None) -> Callable[[T], T]:
    """Class decorator: register ``cls`` as ``name`` of ``kind`` ("attack", "detector", "trainer",
    "aggregator").

    ``stage`` and ``unit`` default to the class attributes of the same name; ``modalities`` and
    the summary (the docstring's first paragraph, as one line) come from the class.
    """
    _check_kind(kind)
    if kind not in CLASS_KINDS:
        raise InvalidParameterError(f"register is for classes of kind {CLASS_KINDS}; use register_object "
                                    f"for a {kind}")
    _check_choice(stage, "stage", STAGES)
    _check_choice(unit, "unit", UNITS)

    def deco(cls: T) -> T:
        st = stage if stage is not None else getattr(cls, "stage", None)
        un = unit if unit is not None else getattr(cls, "unit", None)
        _check_choice(st, f"{cls.__name__}.stage", STAGES)
        _check_choice(un, f"{cls.__name__}.unit", UNITS)
        _add(Entry(kind, name, cls, st, un, tuple(getattr(cls, "modalities", ())), _first_line(cls)))
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def register_object(kind: str, name: str, obj: Any, *, stage: str | None = None, unit: str | None = None,
                    modalities: Iterable[str] = (), summary: str = "", **meta: Any) -> Entry:
    """Register a non-class object (a dataset loader, an architecture builder, a reproduction).

    Extra keywords are kept in the entry's ``meta`` (e.g. ``needs_files=True`` for a dataset).
    Returns the entry.
    """
    _check_kind(kind)
    _check_choice(stage, "stage", STAGES)
    _check_choice(unit, "unit", UNITS)
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(f"name must be a non-empty str; got {name!r}")
    mods = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    entry = Entry(kind, name, obj, stage, unit, mods, summary or _first_line(obj), meta)
    _add(entry)
    return entry


# --- lazy loading of the built-ins ---------------------------------------------------------------

def _load_classes() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def _load_datasets() -> None:
    data = importlib.import_module(_DATA_MODULE)
    for name, spec in data.DATASETS.items():
        if isinstance(spec, tuple):
            loader, needs_files, modality = spec
        else:  # an object describing the loader
            loader = getattr(spec, "loader", spec)
            needs_files, modality = getattr(spec, "needs_files", True), getattr(spec, "modality", None)
        if name not in _REGISTRY["dataset"]:
            register_object("dataset", name, loader, modalities=(modality,) if modality else (),
                            needs_files=bool(needs_files), modality=modality)


def _architecture_modalities(name: str) -> tuple[str, ...]:
    """Modalities of a reference architecture, from its name (text-*, audio-*, mlp, CNNs)."""
    if name.startswith("text-"):
        return ("text",)
    if name.startswith("audio-"):
        return ("audio",)
    if name == "mlp":
        return ("tabular", "image", "audio")
    return ("image",)


def _load_architectures() -> None:
    arch = importlib.import_module(_ARCHITECTURE_MODULE)
    declared = getattr(arch, "ARCHITECTURE_MODALITIES", {})
    defaults = {v: k for k, v in getattr(arch, "DEFAULT_ARCHITECTURE", {}).items()}
    for name, builder in arch.ARCHITECTURES.items():
        if name in _REGISTRY["architecture"]:
            continue
        mods = declared.get(name) or _architecture_modalities(name)
        summary = _first_line(builder) if getattr(builder, "__name__", "") != "<lambda>" else ""
        if not summary:
            summary = f"reference {'/'.join(mods)} architecture" + (
                f" (the {defaults[name]} default)" if name in defaults else "")
        register_object("architecture", name, builder, modalities=mods, summary=summary,
                        modality=mods[0])


def _load_reproductions() -> None:
    """From ``poisonlab.reproductions.REPRODUCTIONS`` (objects with id, title, paper, target,
    minutes and data)."""
    reps = importlib.import_module(_REPRODUCTION_PACKAGE).REPRODUCTIONS
    for rid, rep in reps.items():
        if rid not in _REGISTRY["reproduction"]:
            register_object("reproduction", rid, rep, summary=str(getattr(rep, "title", "")),
                            title=getattr(rep, "title", ""), paper=getattr(rep, "paper", ""),
                            target=getattr(rep, "target", ""), minutes=getattr(rep, "minutes", None),
                            data=tuple(getattr(rep, "data", ())))


_LOADERS: dict[str, Callable[[], None]] = {
    "attack": _load_classes, "detector": _load_classes, "trainer": _load_classes,
    "aggregator": _load_classes, "dataset": _load_datasets, "architecture": _load_architectures,
    "reproduction": _load_reproductions,
}


def _load(kind: str) -> None:
    loader = _LOADERS[kind]
    if loader.__name__ not in _loaded:
        loader()
        _loaded.add(loader.__name__)


# --- queries -------------------------------------------------------------------------------------

def available(kind: str) -> dict[str, Any]:
    """Registered objects of ``kind``, by name (sorted)."""
    _check_kind(kind)
    _load(kind)
    return {name: e.obj for name, e in sorted(_REGISTRY[kind].items())}


def entry(kind: str, name: str) -> Entry:
    """The entry registered as ``name`` of ``kind``; unknown names list what is available."""
    _check_kind(kind)
    _load(kind)
    if name not in _REGISTRY[kind]:
        raise InvalidParameterError(f"unknown {kind} {name!r}; available: {sorted(_REGISTRY[kind])}")
    return _REGISTRY[kind][name]


def get(kind: str, name: str) -> Any:
    """The object registered as ``name`` of ``kind``."""
    return entry(kind, name).obj


def create(kind: str, name: str, **params: Any) -> Any:
    """Instantiate (or call) the object registered as ``name`` with ``params``."""
    obj = get(kind, name)
    try:
        return obj(**params)
    except TypeError as exc:
        valid = obj._param_names() if hasattr(obj, "_param_names") else []
        raise InvalidParameterError(f"{kind} {name!r}: {exc}; valid parameters: {valid}") from exc


def entries(kind: str | None = None, *, stage: str | None = None, unit: str | None = None,
            modality: str | None = None) -> list[Entry]:
    """Entries of ``kind`` (every kind when None) matching ``stage``, ``unit`` and ``modality``,
    sorted by kind then name. An entry with no modalities (an aggregator) matches any modality.

    ``entries("detector", stage="data", unit="sample")`` gives the detectors a data scan can run.
    """
    kinds = KINDS if kind is None else (kind,)
    for k in kinds:
        _check_kind(k)
    _check_choice(stage, "stage", STAGES)
    _check_choice(unit, "unit", UNITS)
    _check_choice(modality, "modality", MODALITIES)
    out = []
    for k in kinds:
        _load(k)
        for _, e in sorted(_REGISTRY[k].items()):
            if stage is not None and e.stage != stage:
                continue
            if unit is not None and e.unit != unit:
                continue
            if modality is not None and e.modalities and modality not in e.modalities:
                continue
            out.append(e)
    return out
