"""NormClipping: bounded, not removed, influence; seeded noise."""

import numpy as np
import pytest

from poisonlab.defenses.federated import NormClipping


def test_planted_outlier_is_clipped_and_nan_dropped(planted):
    M = 1.1 * float(np.median(np.linalg.norm(planted.U[planted.honest], axis=1)))
    agg = NormClipping(max_norm=M)
    out = agg.aggregate(planted.U)
    assert np.isfinite(out).all() and agg.excluded_[planted.nan] and agg.weights_[planted.nan] == 0
    # the boosted update is clipped to norm M, i.e. to about an honest update
    assert agg.weights_[planted.outlier] < 1e-5
    assert np.linalg.norm(out - planted.mu) < 0.5


def test_influence_is_bounded_not_removed(planted):
    # an attacker reversing and boosting an honest update: clipped to -M u/|u|, it still moves the
    # mean of 11 clients by about (|mu| + M) / 11, and never by more than 2M / 11
    U = planted.U.copy()
    U[planted.outlier] = -1e6 * U[planted.honest[3]]
    M = 1.1 * float(np.median(np.linalg.norm(U[planted.honest], axis=1)))
    dist = np.linalg.norm(NormClipping(max_norm=M).aggregate(U) - planted.mu)
    assert 0.5 < dist <= 2 * M / 11 + 0.3
    assert NormClipping.robust is False


def test_noise_is_seeded_and_successive_rounds_differ(planted):
    a = NormClipping(max_norm=5.0, noise_std=0.1, random_state=3)
    r1, r2 = a.aggregate(planted.U), a.aggregate(planted.U)
    assert not np.array_equal(r1, r2)
    b = NormClipping(max_norm=5.0, noise_std=0.1, random_state=3)
    assert np.array_equal(b.aggregate(planted.U), r1) and np.array_equal(b.aggregate(planted.U), r2)
    assert np.array_equal(a.reset().aggregate(planted.U), r1)
    clean = NormClipping(max_norm=5.0).aggregate(planted.U)
    assert np.std(r1 - clean) == pytest.approx(0.1, rel=0.3)


def test_generator_random_state():
    U = np.ones((3, 4))
    a = NormClipping(max_norm=1.0, noise_std=1.0, random_state=np.random.default_rng(5)).aggregate(U)
    b = NormClipping(max_norm=1.0, noise_std=1.0, random_state=np.random.default_rng(5)).aggregate(U)
    assert np.array_equal(a, b)
