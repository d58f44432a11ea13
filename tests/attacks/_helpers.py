"""Helpers shared by the attack tests: a small image set and a trained surrogate CNN."""

import numpy as np


def _images(n=60, classes=3, size=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.6, (n, 1, size, size)).astype(np.float32), np.arange(n) % classes


def _surrogate(X, y, seed=0):
    from poisonlab.models import TorchClassifier, TrainConfig, build_model

    return TorchClassifier(lambda spec: build_model("cnn", spec, widths=(4, 8), hidden=16),
                           config=TrainConfig(epochs=10, lr=0.01, batch_size=32, seed=seed)).fit(X, y)
