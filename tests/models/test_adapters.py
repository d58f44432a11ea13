"""Classifier adapters: the torch adapter learns, predicts and copies, the scikit-learn adapter
and as_classifier, and bad input."""

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from poisonlab import DataError, InvalidParameterError, NotFittedError
from poisonlab.models import (
    MLP,
    ModelSpec,
    SklearnClassifier,
    TorchClassifier,
    TrainConfig,
    as_classifier,
    build_model,
)

from ._helpers import _blobs, _fit


def test_learns_and_predicts():
    X, y = _blobs()
    clf = _fit(0, epochs=30, lr=0.01)
    P = clf.predict_proba(X)
    assert P.shape == (120, 3) and np.allclose(P.sum(1), 1)
    assert (clf.predict(X) == y).mean() > 0.9


def test_user_module_is_not_trained_in_place():
    X, y = _blobs()
    mod = MLP(36, 3, hidden=(8,))
    before = [p.detach().clone() for p in mod.parameters()]
    TorchClassifier(mod, config=TrainConfig(epochs=2)).fit(X, y)
    assert all(torch.equal(a, b) for a, b in zip(before, mod.parameters()))


def test_wrong_input_shape_and_unfitted():
    clf = _fit(0)
    with pytest.raises(DataError, match="do not fit the model"):
        clf.predict(np.zeros((2, 3, 6, 6), np.float32))
    with pytest.raises(NotFittedError):
        TorchClassifier(MLP(4, 2)).predict(np.zeros((2, 4)))


def test_sklearn_adapter_and_as_classifier():
    texts = ["free prize", "cash win", "hello friend", "see you"] * 5
    y = np.array([1, 1, 0, 0] * 5)
    clf = SklearnClassifier(make_pipeline(TfidfVectorizer(), LogisticRegression())).fit(texts, y)
    assert clf.predict_proba(texts).shape == (20, 2)
    assert clf.embed(texts).shape[0] == 20
    wrapped = as_classifier(LogisticRegression().fit(np.eye(4), [0, 1, 0, 1]))
    assert wrapped.predict_proba(np.eye(4)).shape == (4, 2)
    with pytest.raises(InvalidParameterError, match="cannot use"):
        as_classifier(object())


def test_inference_copy_is_frozen_channels_last_and_matches():
    torch.manual_seed(0)
    module = build_model("cnn", ModelSpec((3, 8, 8), 3), widths=(8, 16), hidden=16).eval()
    X = np.random.default_rng(0).random((7, 3, 8, 8)).astype(np.float32)
    clf = TorchClassifier.from_trained(module, n_classes=3)
    fast = clf.inference_copy()
    assert np.allclose(fast.logits(X), clf.logits(X), atol=1e-5)
    assert fast.module_ is not module and all(p.is_contiguous() for p in module.parameters())
    conv = [p for p in fast.module_.parameters() if p.dim() == 4]
    assert conv and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv)
    with torch.no_grad():  # later changes to the original do not reach the copy
        next(module.parameters()).add_(1.0)
    assert not np.allclose(fast.logits(X), clf.logits(X), atol=1e-5)
