"""The train workflow: fit a reference model on a dataset (or a poisoned file), measure it, and
describe it for its model card -- what ``poisonlab train`` runs.

The model card records the architecture, the training data's sha256 and sample count, the
training configuration, the clean accuracy on the test split and, when the data carries a poison
mask and the attack is known (a file written by ``poisonlab attack``), the attack success rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..data.dataset import Dataset
from .events import Event, StepFinished, StepStarted, training_callback
from .record import sha256_array


@dataclass
class TrainResult:
    """A trained reference model and what was measured of it."""

    classifier: Any
    architecture: str
    config: Any
    metrics: dict[str, Any] = field(default_factory=dict)
    data_sha256: str = ""
    n_samples: int = 0
    seconds: float = 0.0


def train_reference(train: Dataset, test: Dataset | None, *, architecture: str | None = None,
                    config: Any = None, attack: Any = None, poison_mask: np.ndarray | None = None,
                    emit: Callable[[Event], None] | None = None) -> TrainResult:
    """Train the modality's reference model (or ``architecture``) on ``train``.

    Parameters
    ----------
    train, test : Dataset
        ``test`` (optional) gives the clean accuracy, and the ASR when ``attack`` (a fitted
        backdoor: its trigger drawn) and a ``poison_mask`` with poisons are given.
    config : TrainConfig, optional
    emit : callable, optional
        Receives StepStarted/StepFinished and the training's epoch and batch events.
    """
    from ..evaluation.metrics import attack_success_rate, clean_accuracy
    from ..models.adapters import TorchClassifier
    from ..models.architectures import model_factory
    from ..models.training import TrainConfig
    from .steps import default_architecture

    emit = emit or (lambda e: None)
    config = config or TrainConfig()
    name = architecture or default_architecture({}, train.modality, train.X)
    vocabulary = None
    if train.modality == "text":
        from ..models.text import Vocabulary

        vocabulary = Vocabulary()
    emit(StepStarted(label="train", step="train"))
    t0 = time.perf_counter()
    clf = TorchClassifier(model_factory(name, train.modality), config=config, vocabulary=vocabulary)
    clf.fit(train.X, train.y, callback=training_callback(emit, "model"))
    metrics: dict[str, Any] = {"epochs_run": len(clf.history_.train_loss)}
    if test is not None:
        metrics["clean_accuracy"] = clean_accuracy(test.y, clf.predict(test.X))
        if attack is not None and hasattr(attack, "apply_trigger") and poison_mask is not None \
                and np.asarray(poison_mask).any():
            wanted = attack.target_labels(test.y)
            keep = np.flatnonzero(test.y != wanted)
            pred = clf.predict(attack.apply_trigger(test.X[keep]))
            metrics["attack_success_rate"] = attack_success_rate(test.y[keep], pred, wanted[keep])
    seconds = time.perf_counter() - t0
    emit(StepFinished(label="train", step="train", seconds=seconds, summary=dict(metrics)))
    return TrainResult(classifier=clf, architecture=name, config=config, metrics=metrics,
                       data_sha256=_data_sha256(train), n_samples=len(train), seconds=seconds)


def _data_sha256(ds: Dataset) -> str:
    """One sha256 over the training inputs and labels (the card's ``data_sha256``)."""
    import hashlib

    return hashlib.sha256((sha256_array(ds.X) + sha256_array(ds.y)).encode()).hexdigest()
