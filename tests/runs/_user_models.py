"""Model factories a user would write, named in scenarios as ``tests.runs._user_models:NAME``."""

from torch import nn


def small_mlp(spec, hidden=16):
    """An ``nn.Module`` factory: called with the ModelSpec."""
    d = 1
    for s in spec.input_shape:
        d *= s
    return nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, spec.n_classes))


def logistic():
    """A scikit-learn classifier: called with no arguments."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500)
