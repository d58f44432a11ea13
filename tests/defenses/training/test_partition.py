"""DPA, SS-DPA and Run-off Election trainers: content-hash partitions, certificates that hold
when the training set is actually changed, and clear refusals."""

import numpy as np
import pytest
from torch import nn

from poisonlab.defenses.training.partition import (
    DeepPartitionAggregation,
    SemiSupervisedDPA,
    content_hash_partitions,
)
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.models import TrainConfig

CFG = TrainConfig(epochs=15, lr=0.05, batch_size=8)


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(0, 1, size=(n, 4)).astype(np.float32)
    X[np.arange(n), y] += 3.0
    return X, y


def _linear(spec):
    return nn.Linear(spec.input_shape[0], spec.n_classes)


def test_content_hash_moves_no_other_sample():
    X, _ = _blobs()
    p = content_hash_partitions(X, 7)
    assert np.array_equal(content_hash_partitions(X[10:], 7), p[10:])                 # removal
    extra = np.r_[X, np.full((3, 4), 9.0, np.float32)]
    assert np.array_equal(content_hash_partitions(extra, 7)[:len(X)], p)               # insertion
    assert np.array_equal(content_hash_partitions(X[::-1], 7), p[::-1])                # order-free
    assert set(np.unique(p)) == set(range(7))


def test_dpa_predicts_and_certifies():
    X, y = _blobs()
    dpa = DeepPartitionAggregation(k=10, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    cert = dpa.certify(X)
    assert (cert.prediction == y).mean() > 0.95
    assert cert.threat == "insertion_removal" and cert.method == "dpa" and cert.n_models == 10
    assert cert.radius.max() <= 5 and (cert.radius >= 0).all()      # floor(10 / 2) at most
    assert np.array_equal(dpa.predict(X), cert.prediction)
    assert dpa.partition_sizes_.sum() == len(X) and dpa.certificate_ is cert


def test_the_certificate_holds_when_partitions_are_really_poisoned():
    # SS-DPA, label flips: relabel every sample of r partitions to the runner-up class of an input
    # certified at r, retrain, and the certified predictions must not move
    X, y = _blobs(n=240, seed=1)
    ss = SemiSupervisedDPA(k=12, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    cert = ss.certify(X)
    r = 3
    sure = np.flatnonzero(cert.radius >= r)
    assert len(sure) > 50
    counts = cert.extra["counts"]
    rng = np.random.default_rng(0)
    for trial in range(2):
        parts = rng.choice(12, size=r, replace=False)
        target = int(rng.integers(3))
        y_bad = y.copy()
        y_bad[np.isin(ss.partitions_, parts)] = target
        bad = SemiSupervisedDPA(k=12, random_state=0).fit(X, y_bad, model_factory=_linear, config=CFG)
        after = bad.certify(X)
        assert np.array_equal(after.prediction[sure], cert.prediction[sure]), trial
        assert np.array_equal(bad.partitions_, ss.partitions_)
    assert counts.shape == (len(X), 3)


def test_run_off_election_over_the_same_models():
    X, y = _blobs()
    dpa = DeepPartitionAggregation(k=10, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    roe = DeepPartitionAggregation(k=10, aggregation="roe", random_state=0).fit(
        X, y, model_factory=_linear, config=CFG)
    c_dpa, c_roe = dpa.certify(X), roe.certify(X)
    assert c_roe.method == "roe" and (c_roe.prediction == y).mean() > 0.95
    assert np.array_equal(dpa.certify(X, method="roe").radius, c_roe.radius)
    # unanimous inputs: both certificates are (10 - 1[class 0, which wins ties, is the rival]) // 2
    unanimous = c_dpa.extra["counts"].max(1) == 10
    expected = (10 - (c_dpa.prediction[unanimous] > 0)) // 2
    assert unanimous.sum() > 100
    assert np.array_equal(c_dpa.radius[unanimous], expected) and np.array_equal(c_roe.radius[unanimous], expected)


def test_ss_dpa_certifies_label_flips_only():
    X, y = _blobs()
    ss = SemiSupervisedDPA(k=10, n_components=2, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    cert = ss.certify(X[:20])
    assert cert.threat == "label_flip"
    assert cert.radius_for("label_flip").shape == (20,)
    with pytest.raises(InvalidParameterError, match="insertion_removal.*label_flip certificate.*unsupervised"):
        cert.radius_for("insertion_removal")
    dpa = DeepPartitionAggregation(k=10, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    with pytest.raises(InvalidParameterError, match="label_flip.*insertion_removal certificate.*SSDPA"):
        dpa.certify(X[:5]).certified_accuracy(y[:5], [0, 1], threat="label_flip")
    with pytest.raises(InvalidParameterError, match="n_components must be at most"):
        SemiSupervisedDPA(k=10, n_components=9, random_state=0).fit(X, y, model_factory=_linear, config=CFG)


def test_bad_k_and_empty_partitions_are_refused():
    X, y = _blobs(n=30)
    with pytest.raises(InvalidParameterError, match=r"k must be at most the number of training samples \(30\); got 31"):
        DeepPartitionAggregation(k=31).fit(X, y, model_factory=_linear, config=CFG)
    with pytest.raises(InvalidParameterError, match=r"DeepPartitionAggregation.k must be"):
        DeepPartitionAggregation(k=1).fit(X, y, model_factory=_linear, config=CFG)
    with pytest.raises(DataError, match=r"partition\(s\) .* of k=30 received no training sample"):
        DeepPartitionAggregation(k=30).fit(X, y, model_factory=_linear, config=CFG)


def test_hooks_the_batched_ensemble_cannot_honour_are_refused():
    X, y = _blobs(n=60)
    with pytest.raises(InvalidParameterError, match=r"cannot use \['optimizer_factory'\].*config.optimizer"):
        DeepPartitionAggregation(k=3).fit(X, y, model_factory=_linear, config=CFG,
                                          optimizer_factory=lambda p, c: None)
    seen = []

    def loss_fn(logits, yy):
        seen.append(len(yy))
        return nn.functional.cross_entropy(logits, yy, reduction="none")

    DeepPartitionAggregation(k=3, random_state=0).fit(X, y, model_factory=_linear, config=CFG, loss_fn=loss_fn)
    assert seen and all(s % 8 == 0 for s in seen)   # active models x batch slots per step


def test_inserting_a_sample_anywhere_retrains_only_its_partitions_model():
    """The certificate assumes one changed sample changes one base model: batch orders are keyed
    on content, so a sample inserted at the *front* (shifting every row) leaves the other
    partitions' models bit-identical."""
    X, y = _blobs(120)
    new = np.array([[9.0, -9.0, 0.5, 0.25]], dtype=np.float32)
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=4, seed=0)
    a = DeepPartitionAggregation(k=6, random_state=0).fit(X, y, model_factory=_linear, config=cfg)
    b = DeepPartitionAggregation(k=6, random_state=0).fit(np.concatenate([new, X]), np.concatenate([[1], y]),
                                                          model_factory=_linear, config=cfg)
    changed = int(content_hash_partitions(new, 6)[0])
    pa, pb = a.classifier_.stack.params, b.classifier_.stack.params
    for m in range(6):
        same = all(np.array_equal(pa[n][m].numpy(), pb[n][m].numpy()) for n in pa)
        assert same == (m != changed), (m, changed)
