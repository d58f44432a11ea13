"""Small digits models shared by the canary, drift, gate and CLI tests: trained once per test
process through the library (BadNets: a 3x3 white square at the bottom right -> class 3)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

#: The backdoor's target class.
TARGET = 3
EPOCHS = 20


@functools.lru_cache(maxsize=None)
def digits():
    from poisonlab.data import load_digits

    return load_digits()


@functools.lru_cache(maxsize=None)
def _trained(kind: str, seed: int):
    from poisonlab.attacks.data import BadNets
    from poisonlab.models import TorchClassifier, TrainConfig, build_model

    d = digits()
    X, y = d.train.X, d.train.y
    if kind == "badnets":
        res = BadNets(target=TARGET, poison_rate=0.1, value=1.0, random_state=1).poison(X, y)
        X, y = res.X, res.y
    clf = TorchClassifier(lambda s: build_model("cnn", s),
                          config=TrainConfig(epochs=EPOCHS, lr=3e-3, batch_size=64, seed=seed))
    return clf.fit(X, y)


def classifier(kind: str = "clean", seed: int = 0):
    """A fitted TorchClassifier: ``kind`` "clean" or "badnets"."""
    return _trained(kind, seed)


def saved(folder: Path, kind: str = "clean", seed: int = 0) -> Path:
    """The model saved with its card in ``folder`` (``<kind>-<seed>.safetensors``)."""
    from poisonlab.models import ModelSpec, save_model

    path = Path(folder) / f"{kind}-{seed}.safetensors"
    if not path.exists():
        d = digits()
        clf = classifier(kind, seed)
        save_model(clf.module_, path, architecture="cnn", spec=ModelSpec((1, 8, 8), 10), modality="image",
                   class_names=d.train.classes, n_samples=len(d.train),
                   metrics={"clean_accuracy": float(np.mean(clf.predict(d.test.X) == d.test.y))})
    return path
