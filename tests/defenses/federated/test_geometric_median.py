"""GeometricMedian (RFA): the planted round, weights, convergence."""

import numpy as np
import pytest

from poisonlab.defenses.federated import GeometricMedian
from poisonlab.defenses.federated.aggregate import geometric_median


def test_planted_outlier_gets_weight_zero(planted):
    agg = GeometricMedian()
    out = agg.aggregate(planted.U)
    assert np.linalg.norm(out - planted.mu) < 0.5
    assert agg.weights_[planted.outlier] < 1e-6 and agg.weights_[planted.nan] == 0
    assert agg.excluded_[planted.nan]
    assert out == pytest.approx(agg.weights_ @ np.nan_to_num(planted.U))  # weights_ are the result's
    assert agg.n_iter_ < 200


def test_the_aggregate_is_a_minimiser_of_the_weighted_distances(planted):
    U = planted.U[planted.honest]
    w = np.linspace(1, 3, 10)
    z = GeometricMedian(tol=1e-10, max_iter=1000).aggregate(U, weights=w)

    def objective(p):
        return float(w @ np.linalg.norm(U - p, axis=1))

    rng = np.random.default_rng(0)
    for _ in range(20):
        assert objective(z) <= objective(z + 1e-3 * rng.normal(size=50)) + 1e-12


def test_weights_change_the_result():
    U = np.array([[0.0], [1.0], [10.0]])
    assert GeometricMedian().aggregate(U)[0] == pytest.approx(1.0, abs=1e-4)
    # weight 0.6 on 10: more than half the weight -> the minimiser is 10
    assert GeometricMedian().aggregate(U, weights=[0.2, 0.2, 0.6])[0] == pytest.approx(10.0, abs=1e-4)


def test_deterministic(planted):
    assert np.array_equal(GeometricMedian().aggregate(planted.U), GeometricMedian().aggregate(planted.U))


def test_max_iter_caps_the_work():
    U = np.array([[0.0], [3.0], [9.0]])
    agg = GeometricMedian(max_iter=1)
    assert agg.aggregate(U)[0] == pytest.approx(geometric_median(U, max_iter=1)[0])
    assert agg.n_iter_ == 1
