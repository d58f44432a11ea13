"""Every attack, detector and aggregator by name: feeds the CLI and the contract tests.

Classes register themselves with :func:`register`; :func:`available` lists what is registered,
importing the built-in modules on first use so that ``import poisonlab`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

from .exceptions import InvalidParameterError

KINDS = ("attack", "detector", "aggregator")

#: Modules whose import registers the built-ins. Adding a method = adding its module here.
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
    "poisonlab.attacks.training.procedure",
    "poisonlab.defenses.data.knn_label",
    "poisonlab.defenses.data.spectral",
    "poisonlab.defenses.data.spectre",
    "poisonlab.defenses.data.activation_clustering",
    "poisonlab.defenses.data.label_issues",
    "poisonlab.defenses.data.robust_outliers",
    "poisonlab.defenses.data.duplicates",
    "poisonlab.defenses.data.combine",
    "poisonlab.defenses.inference.strip",
    "poisonlab.defenses.model.neural_cleanse",
    "poisonlab.defenses.federated.basic",
)

_REGISTRY: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}
_loaded = False

T = TypeVar("T", bound=type)


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: register ``cls`` under ``kind`` ("attack", "detector", "aggregator")."""
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {KINDS}; got {kind!r}")

    def deco(cls: T) -> T:
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not cls:
            raise InvalidParameterError(f"{kind} {name!r} is already registered to {existing.__name__}")
        _REGISTRY[kind][name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)
        _loaded = True


def available(kind: str) -> dict[str, type]:
    """Registered classes of ``kind``, by name (sorted)."""
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {KINDS}; got {kind!r}")
    _load_builtins()
    return dict(sorted(_REGISTRY[kind].items()))


def get(kind: str, name: str) -> type:
    """The class registered as ``name``."""
    classes = available(kind)
    if name not in classes:
        raise InvalidParameterError(f"unknown {kind} {name!r}; available: {sorted(classes)}")
    return classes[name]


def create(kind: str, name: str, **params: Any) -> Any:
    """Instantiate the class registered as ``name`` with ``params``."""
    cls = get(kind, name)
    try:
        return cls(**params)
    except TypeError as exc:
        valid = cls._param_names() if hasattr(cls, "_param_names") else []
        raise InvalidParameterError(f"{kind} {name!r}: {exc}; valid parameters: {valid}") from exc
