"""Helpers shared by the model tests: three Gaussian blobs and a small CNN fitted on them."""

import numpy as np

from poisonlab.models import TorchClassifier, TrainConfig, build_model


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = (rng.normal(size=(n, 1, 6, 6)) + y[:, None, None, None] * 1.5).astype(np.float32)
    return X, y


def _fit(seed, epochs=3, **cfg):
    X, y = _blobs()
    return TorchClassifier(lambda s: build_model("cnn", s, widths=(4, 8), hidden=16),
                           config=TrainConfig(epochs=epochs, batch_size=32, seed=seed, **cfg)).fit(X, y)
