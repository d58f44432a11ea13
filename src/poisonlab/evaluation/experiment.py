"""One red-team run: poison the training set, train a poisoned and a clean model, measure both.

Shared by ``poisonlab demo``, ``poisonlab reproduce`` and users' own scripts.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ..data.dataset import Dataset
from ..models.adapters import TorchClassifier
from ..models.architectures import DEFAULT_ARCHITECTURE, default_architecture_for, model_factory  # noqa: F401
from ..models.training import TrainConfig
from .metrics import backdoor_metrics

Progress = Callable[[str, str, dict], None]


def train_and_measure(train: Dataset, X_train: np.ndarray, y_train: np.ndarray, test: Dataset,
                      attack: Any, *, architecture: str | None, config: TrainConfig,
                      validation: Dataset | None = None, label: str = "model",
                      progress: Progress | None = None) -> dict[str, Any]:
    """Train one model on ``(X_train, y_train)`` and return its backdoor metrics and timing."""
    vocabulary = None
    if train.modality == "text":
        from ..models.text import Vocabulary

        vocabulary = Vocabulary()
    clf = TorchClassifier(model_factory(architecture, train.modality), config=config, vocabulary=vocabulary)
    cb = (lambda event, info: progress(label, event, info)) if progress else None
    t0 = time.perf_counter()
    if validation is not None:
        clf.fit(X_train, y_train, X_val=validation.X, y_val=validation.y, callback=cb)
    else:
        clf.fit(X_train, y_train, callback=cb)
    train_s = time.perf_counter() - t0
    out = backdoor_metrics(clf, attack, test.X, test.y, test.n_classes)
    out.update(train_seconds=train_s, epochs_run=len(clf.history_.train_loss),
               best_epoch=clf.history_.best_epoch)
    out["model"] = clf
    return out


def run_backdoor(train: Dataset, test: Dataset, attack: Any, *, architecture: str | None = None,
                 config: TrainConfig | None = None, validation: Dataset | None = None,
                 clean_baseline: bool = True, progress: Progress | None = None,
                 poison_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Poison ``train`` with ``attack``, train on it (and on the clean set), measure on ``test``.

    ``poison_kwargs`` go to ``attack.poison`` (a surrogate ``model=`` for attacks that need one).

    Returns a JSON-friendly dict (``poisoned`` and ``clean`` metrics, the attack's parameters and
    what it did) plus the trained models under ``"models"``, which a caller drops before saving.
    """
    config = config or TrainConfig()
    # the default follows the data: waveforms (what audio triggers poison) get the waveform model
    architecture = architecture or default_architecture_for(train.modality, train.X)
    t0 = time.perf_counter()
    res = attack.poison(train.X, train.y, **(poison_kwargs or {}))
    poison_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "dataset": train.name,
        "n_train": len(train),
        "n_test": len(test),
        "attack": {"name": type(attack).__name__, "params": describe(attack.get_params()),
                   "n_poison": res.n_poison, "poison_seconds": poison_s,
                   **{k: describe(v) for k, v in res.info.items() if k != "attack"}},
        "train_config": config.to_dict(),
        "architecture": architecture,
    }
    models = {}
    runs = [("poisoned", res.X, res.y)]
    if clean_baseline:
        runs.append(("clean", train.X, train.y))
    for label, X, y in runs:
        m = train_and_measure(train, X, y, test, attack, architecture=architecture,
                              config=replace(config), validation=validation, label=label,
                              progress=progress)
        models[label] = m.pop("model")
        out[label] = m
    out["models"] = models
    out["poison_result"] = res
    return out


def describe(v: Any) -> Any:
    """JSON-friendly attack parameters and facts: numbers as numbers, arrays and objects (models,
    encoders, callbacks) named, not serialised."""
    if isinstance(v, np.ndarray):
        return f"<array shape={list(v.shape)}>"
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, (tuple, list)):
        return [describe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): describe(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return f"<{type(v).__name__}>"


def retrain_comparison(train: Dataset, keep: np.ndarray, test: Dataset, *, attack: Any = None,
                       architecture: str | None = None, config: TrainConfig | None = None,
                       progress: Progress | None = None) -> dict[str, Any]:
    """Train on all of ``train`` and on ``train[keep]``; report clean accuracy (and ASR when the
    ``attack`` is known) of both on ``test``: what removing the quarantined samples changes."""
    from .metrics import clean_accuracy

    config = config or TrainConfig()
    architecture = architecture or default_architecture_for(train.modality, train.X)
    keep = np.asarray(keep, dtype=bool)
    out: dict[str, Any] = {"n_removed": int((~keep).sum()), "n_kept": int(keep.sum())}
    for label, ds in (("before", train), ("after", train.subset(keep))):
        clf = TorchClassifier(model_factory(architecture, train.modality), config=replace(config))
        cb = (lambda event, info, _l=label: progress(f"retrain {_l}", event, info)) if progress else None
        clf.fit(ds.X, ds.y, callback=cb)
        if attack is not None:
            out[label] = backdoor_metrics(clf, attack, test.X, test.y, test.n_classes)
        else:
            out[label] = {"clean_accuracy": clean_accuracy(test.y, clf.predict(test.X))}
    return out
