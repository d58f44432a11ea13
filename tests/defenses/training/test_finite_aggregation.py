"""Finite Aggregation trainer: content-hashed buckets, the spread assignment, certificates that
hold when buckets are actually changed, d = 1 as DPA, seeds and refusals."""

import numpy as np
import pytest
from torch import nn

from poisonlab.defenses.training.certificates import dpa_radius, run_off_vote
from poisonlab.defenses.training.finite_aggregation import (
    FiniteAggregation,
    members_from_spread,
    spread_assignment,
)
from poisonlab.defenses.training.partition import content_hash_partitions
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.models import TrainConfig

CFG = TrainConfig(epochs=12, lr=0.05, batch_size=8)


def _blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(0, 1, size=(n, 4)).astype(np.float32)
    X[np.arange(n), y] += 2.5
    return X, y


def _linear(spec):
    return nn.Linear(spec.input_shape[0], spec.n_classes)


@pytest.mark.parametrize("k,d", [(2, 1), (3, 2), (5, 3), (4, 4)])
def test_every_bucket_feeds_d_models_and_every_model_reads_d_buckets(k, d):
    s = spread_assignment(k, d, seed=7)
    assert s.shape == (k * d, d)
    assert (np.bincount(s.ravel(), minlength=k * d) == d).all()              # each model: d buckets
    assert all(len(set(row)) == d for row in s.tolist())                     # each bucket: d models
    assert np.array_equal(s, spread_assignment(k, d, seed=7))                # a function of the seed
    shifts = {tuple(spread_assignment(6, 3, seed=i)[0]) for i in range(10)}
    assert len(shifts) > 1                                                    # ... and it depends on it


def test_members_are_the_union_of_the_d_buckets():
    X, _ = _blobs()
    k, d = 4, 3
    buckets = content_hash_partitions(X, k * d)
    s = spread_assignment(k, d, seed=0)
    members = members_from_spread(buckets, s)
    for m, rows in enumerate(members):
        fed_by = np.flatnonzero((s == m).any(axis=1))                        # the d buckets feeding m
        assert len(fed_by) == d
        assert np.array_equal(rows, np.flatnonzero(np.isin(buckets, fed_by)))
    assert np.array_equal(np.bincount(np.concatenate(members), minlength=len(X)), np.full(len(X), d))


def test_fa_predicts_and_certifies():
    X, y = _blobs()
    fa = FiniteAggregation(k=6, d=2, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    cert = fa.certify(X)
    assert (cert.prediction == y).mean() > 0.9
    assert cert.threat == "insertion_removal" and cert.method == "fa" and cert.n_models == 12
    assert cert.radius.max() <= 3 and (cert.radius >= 0).all()              # floor(k / 2) at most
    assert np.array_equal(fa.predict(X), cert.prediction) and fa.certificate_ is cert
    assert fa.model_sizes_.sum() == 2 * len(X) and fa.bucket_sizes_.sum() == len(X)
    assert np.array_equal(fa.buckets_, content_hash_partitions(X, 12))
    # unanimous inputs: (k d - 1[class 0, which wins ties, is the rival]) // (2 d)
    counts = cert.extra["counts"]
    unanimous = counts.max(1) == 12
    assert unanimous.sum() > 50
    assert np.array_equal(cert.radius[unanimous], (12 - (cert.prediction[unanimous] > 0)) // 4)


def test_fa_with_d_1_certifies_as_dpa():
    X, y = _blobs()
    fa = FiniteAggregation(k=8, d=1, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    cert = fa.certify(X)
    pred, radius = dpa_radius(cert.extra["counts"])
    assert np.array_equal(cert.prediction, pred) and np.array_equal(cert.radius, radius)
    assert np.array_equal(fa.buckets_, content_hash_partitions(X, 8))        # DPA's partitions


def test_fa_roe_aggregation_over_the_same_models():
    X, y = _blobs()
    fa = FiniteAggregation(k=5, d=2, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    roe = FiniteAggregation(k=5, d=2, aggregation="fa_roe", random_state=0).fit(X, y, model_factory=_linear,
                                                                               config=CFG)
    c_roe = roe.certify(X)
    assert c_roe.method == "fa_roe" and np.array_equal(fa.certify(X, method="fa_roe").radius, c_roe.radius)
    counts, pairwise = roe.classifier_.stack.vote_statistics(X)
    assert np.array_equal(c_roe.prediction, run_off_vote(counts, pairwise))
    assert np.array_equal(roe.predict(X), c_roe.prediction)
    with pytest.raises(InvalidParameterError, match="method must be 'fa' or 'fa_roe'; got 'dpa'"):
        fa.certify(X[:3], method="dpa")


def test_the_certificate_holds_when_buckets_are_really_poisoned():
    # relabel every sample of r buckets (r buckets changed: at most r insertions + removals each
    # touching one of them) and retrain: inputs certified at >= r keep their prediction, and every
    # model no changed bucket feeds is unchanged
    X, y = _blobs(n=240, seed=1)
    fa = FiniteAggregation(k=8, d=2, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    cert = fa.certify(X)
    r = 2
    sure = np.flatnonzero(cert.radius >= r)
    assert len(sure) > 50
    rng = np.random.default_rng(0)
    for trial in range(2):
        changed = rng.choice(16, size=r, replace=False)
        y_bad = y.copy()
        y_bad[np.isin(fa.buckets_, changed)] = int(rng.integers(3))
        bad = FiniteAggregation(k=8, d=2, random_state=0).fit(X, y_bad, model_factory=_linear, config=CFG)
        assert np.array_equal(bad.certify(X).prediction[sure], cert.prediction[sure]), trial
        untouched = np.setdiff1d(np.arange(16), fa.spread_[changed].ravel())
        before, after = fa.classifier_.stack.votes(X), bad.classifier_.stack.votes(X)
        assert np.array_equal(before[untouched], after[untouched])


def test_same_seed_same_certificate():
    X, y = _blobs(n=150)
    a = FiniteAggregation(k=4, d=2, random_state=3).fit(X, y, model_factory=_linear, config=CFG).certify(X)
    b = FiniteAggregation(k=4, d=2, random_state=3).fit(X, y, model_factory=_linear, config=CFG).certify(X)
    assert np.array_equal(a.prediction, b.prediction) and np.array_equal(a.radius, b.radius)


def test_bad_k_d_and_empty_models_are_refused():
    X, y = _blobs(n=30)
    with pytest.raises(InvalidParameterError, match=r"FiniteAggregation.d must be"):
        FiniteAggregation(k=2, d=0).fit(X, y, model_factory=_linear, config=CFG)
    with pytest.raises(InvalidParameterError, match=r"FiniteAggregation.k must be"):
        FiniteAggregation(k=1, d=2).fit(X, y, model_factory=_linear, config=CFG)
    with pytest.raises(InvalidParameterError,
                       match=r"k \* d must be at most the number of training samples \(30\); got k \* d = 8 \* 4 = 32"):
        FiniteAggregation(k=8, d=4).fit(X, y, model_factory=_linear, config=CFG)
    with pytest.raises(DataError, match=r"base model\(s\) .* of k \* d = 30 received no training sample"):
        FiniteAggregation(k=30, d=1).fit(X, y, model_factory=_linear, config=CFG)
    with pytest.raises(InvalidParameterError, match=r"cannot use \['optimizer_factory'\]"):
        FiniteAggregation(k=3, d=2).fit(X, y, model_factory=_linear, config=CFG, optimizer_factory=lambda p, c: None)
    with pytest.raises(InvalidParameterError, match="k and d must be positive ints"):
        spread_assignment(3, 0, seed=0)


def test_an_appended_sample_changes_only_the_d_models_its_bucket_feeds():
    X, y = _blobs(n=150)
    fa = FiniteAggregation(k=4, d=2, random_state=0).fit(X, y, model_factory=_linear, config=CFG)
    X2, y2 = np.r_[X, np.full((1, 4), 7.0, np.float32)], np.r_[y, 0]
    fa2 = FiniteAggregation(k=4, d=2, random_state=0).fit(X2, y2, model_factory=_linear, config=CFG)
    assert np.array_equal(fa2.buckets_[:-1], fa.buckets_)
    fed = fa.spread_[fa2.buckets_[-1]]
    P, Q = fa.classifier_.stack.params, fa2.classifier_.stack.params
    same = [all(np.array_equal(P[n][m].numpy(), Q[n][m].numpy()) for n in P) for m in range(8)]
    assert [m for m in range(8) if not same[m]] == sorted(fed.tolist())
