"""Helpers shared by the data-stage detector tests: Gaussian classes with a planted poison cluster."""

import numpy as np


def _planted(n_per_class=500, n_classes=5, n_poison=50, d=32, shift=3.0, seed=0):
    """Gaussian classes; ``n_poison`` samples of class 0 moved along one direction (a backdoor
    cluster in representation space)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, size=(n_classes, d))
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = centres[y] + rng.normal(size=(len(y), d))
    poison = np.zeros(len(y), bool)
    idx = rng.choice(n_per_class, n_poison, replace=False)
    poison[idx] = True
    direction = rng.normal(size=d)
    X[idx] += shift * direction / np.linalg.norm(direction) * np.sqrt(d) / 2
    return X, y, poison
