"""Contract checks over attacks, detectors and aggregators (shared/DESIGN.md).

Each check raises AssertionError when an object breaks a rule; ``test_common.py`` runs them over
the registry, and ``test_contract_meta.py`` proves they catch deliberately broken objects.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from poisonlab import BackdoorAttack, BaseDetector, NotFittedError, PoisonResult
from poisonlab.exceptions import InvalidParameterError


def attack_data(cls):
    rng = np.random.default_rng(7)
    if cls.modalities == ("text",):
        words = np.array(["free", "prize", "call", "now", "meet", "lunch", "see", "you", "win", "today"])
        X = np.array([" ".join(rng.choice(words, 5)) for _ in range(80)], dtype=object)
        return X, np.arange(80) % 4
    if cls.modalities == ("audio",):
        return (rng.uniform(-0.3, 0.3, size=(80, 8000)).astype(np.float32)), np.arange(80) % 4
    if cls.modalities == ("tabular",):
        return rng.uniform(0, 0.5, size=(80, 6)).astype(np.float32), np.arange(80) % 4
    X = rng.uniform(0, 0.5, size=(80, 1, 8, 8)).astype(np.float32)
    y = np.arange(80) % (2 if getattr(cls, "binary_only", False) else 4)
    if getattr(cls, "binary_only", False):
        X[y == 1] += 0.3  # separable enough for a linear model to have support vectors
    return X, y


def attack_needs(cls, X, y):
    """Keyword extras an attack's ``needs`` names, built for ``attack_data``."""
    needs = {}
    if "model" in cls.needs:
        import torch

        from poisonlab.models import ModelSpec

        torch.manual_seed(0)
        needs["model"] = _tiny_cnn(ModelSpec(input_shape=X.shape[1:], n_classes=int(y.max()) + 1)).eval()
    if "target_input" in cls.needs:
        needs["target_input"] = X[1].copy()
    if "groups" in cls.needs:
        needs["groups"] = np.where(np.arange(len(y)) % 3 == 0, "a", "b")
    if "X_val" in cls.needs:
        needs["X_val"], needs["y_val"] = X[::3].copy(), y[::3].copy()
    return needs


def check_attack(cls, params=None):
    params = {"random_state": 0, **(params or {})}
    X, y = attack_data(cls)
    X0, y0 = X.copy(), y.copy()
    needs = attack_needs(cls, X, y)
    atk = cls(**params)
    res = atk.poison(X, y, **needs)
    # returns a frozen PoisonResult, inputs untouched
    assert isinstance(res, PoisonResult), "poison must return a PoisonResult"
    assert np.array_equal(X, X0) and np.array_equal(y, y0), "poison modified its inputs"
    with pytest.raises(Exception):
        res.X = None
    # dtypes and shapes (attacks that inject samples append them at the end)
    n = len(X)
    assert len(res.y) >= n and res.X.shape[1:] == X.shape[1:] and res.X.dtype == X.dtype, "X shape/dtype changed"
    assert res.y.dtype == np.int64 and res.y.ndim == 1, "y must stay int64"
    assert res.poison_mask.dtype == bool and res.poison_mask.shape == res.y.shape
    assert np.array_equal(res.indices, np.flatnonzero(res.poison_mask)), "indices must match the mask"
    assert res.n_poison >= 1, "an attack must poison something"
    assert res.poison_mask[n:].all(), "appended samples must be in poison_mask"
    # the mask is the truth: untouched outside, changed inside
    clean = ~res.poison_mask[:n]
    assert np.array_equal(res.X[:n][clean], X[clean]) and np.array_equal(res.y[:n][clean], y[clean]), \
        "samples outside poison_mask were altered"
    changed = (res.X[:n].reshape(n, -1) != X.reshape(n, -1)).any(axis=1) | (res.y[:n] != y)
    assert changed[res.poison_mask[:n]].all(), "a sample in poison_mask is unchanged"
    # read-only inputs work (no in-place writes)
    Xr, yr = X.copy(), y.copy()
    Xr.flags.writeable = False
    yr.flags.writeable = False
    cls(**params).poison(Xr, yr, **needs)
    # seed determinism
    a, b = cls(**params).poison(X, y, **needs), cls(**params).poison(X, y, **needs)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y) and np.array_equal(a.poison_mask, b.poison_mask), \
        "same random_state must give the same poison"
    # params round trip, clone, pickle
    cl = atk.clone()
    assert type(cl) is cls and set(cl.get_params()) == set(atk.get_params())
    c = cl.poison(X, y, **needs)
    assert np.array_equal(c.poison_mask, a.poison_mask), "clone must reproduce the poison"
    p = pickle.loads(pickle.dumps(atk)).poison(X, y, **needs)
    assert np.array_equal(p.poison_mask, a.poison_mask), "a pickled attack must reproduce the poison"
    with pytest.raises(InvalidParameterError):
        atk.set_params(no_such_parameter=1)
    if isinstance(atk, BackdoorAttack):
        T = atk.apply_trigger(X[:5])
        assert T.shape == X[:5].shape and T.dtype == X.dtype
        assert np.array_equal(X, X0), "apply_trigger modified its input"
        assert np.array_equal(T, atk.apply_trigger(X[:5])), "apply_trigger must be deterministic"
        assert not np.array_equal(T, X[:5]), "apply_trigger changed nothing"


def _features():
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, (60, 5)), rng.normal(5, 1, (60, 5))]
    y = np.r_[np.zeros(60, int), np.ones(60, int)]
    y[[2, 70]] = 1 - y[[2, 70]]
    return X, y


def _tiny_cnn(spec):
    from poisonlab.models import build_model

    return build_model("cnn", spec, widths=(4, 8), hidden=16)


def _small_image_model():
    """Three classes, each lighting one pixel on faint noise: learnable in a few epochs."""
    from poisonlab.models import TorchClassifier, TrainConfig

    rng = np.random.default_rng(5)
    y = np.arange(240) % 3
    X = rng.uniform(0, 0.3, (240, 1, 8, 8)).astype(np.float32)
    X[np.arange(240), 0, y, y] = 1.0
    clf = TorchClassifier(_tiny_cnn, config=TrainConfig(epochs=15, lr=0.01, batch_size=32)).fit(X, y)
    return X, clf


def detector_case(name):
    """``(params, fit_args, fit_kwargs)`` for each registered detector."""
    if name in ("strip", "neural_cleanse"):
        X, clf = _small_image_model()
        if name == "strip":
            return {"n_overlays": 8, "false_positive_rate": 0.05}, (X,), {"model": clf}
        return {"epochs": 2}, (X[:48],), {"model": clf}
    return {}, _features(), {}


def check_detector(cls, params=None, args=None, kwargs=None):
    params = params or {}
    if args is None:
        args, kwargs = _features(), {}
    kwargs = kwargs or {}
    copies = [np.array(a, copy=True) for a in args]
    det = cls(**params)
    for attr in ("scores_", "threshold_", "flags_"):
        assert not hasattr(det, attr), f"unfitted detector must not have {attr}"
    with pytest.raises(NotFittedError):
        det.flag(args[0])
    out = det.fit(*args, **kwargs)
    assert out is det, "fit must return self"
    assert all(np.array_equal(a, c) for a, c in zip(args, copies)), "fit modified its inputs"
    assert isinstance(det, BaseDetector) and det.unit in ("sample", "input", "class", "model", "client")
    assert det.scores_.dtype == np.float64 and det.scores_.ndim == 1
    assert np.isfinite(det.scores_).all()
    assert isinstance(det.threshold_, float)
    assert det.flags_.dtype == bool and np.array_equal(det.flags_, det.scores_ > det.threshold_), \
        "flags_ must be scores_ > threshold_"
    again = cls(**params).fit(*args, **kwargs)
    assert np.array_equal(again.scores_, det.scores_), "same input must give the same scores"
    assert np.array_equal(pickle.loads(pickle.dumps(det)).scores_, det.scores_)
    assert type(det.clone()) is cls and not hasattr(det.clone(), "scores_")
    bad = {det.threshold_param: 2.0}
    with pytest.raises(InvalidParameterError):
        cls(**{**params, **bad}).fit(*args, **kwargs)


def check_aggregator(cls, params=None):
    rng = np.random.default_rng(0)
    U = rng.normal(size=(7, 12))
    U0 = U.copy()
    agg = cls(**(params or {}))
    out = agg.aggregate(U)
    assert np.array_equal(U, U0), "aggregate modified the updates"
    assert out.shape == (12,) and np.isfinite(out).all()
    assert agg.weights_.shape == (7,) and agg.excluded_.dtype == bool
    assert np.isclose(agg.weights_.sum(), 1.0)
    assert np.array_equal(cls(**(params or {})).aggregate(U), out), "aggregation must be deterministic"
    # identical honest updates aggregate to themselves
    same = np.tile(U[0], (7, 1))
    assert np.allclose(cls(**(params or {})).aggregate(same), U[0])
