"""FedAvg and the coordinate-wise median on the planted round, and how every rule of the package
counts n and f when it drops non-finite updates."""

import numpy as np
import pytest

from poisonlab.defenses.federated import CoordinateMedian, FedAvg, Krum


def test_fedavg_drops_the_nan_client_and_is_dragged_by_the_outlier(planted):
    agg = FedAvg()
    out = agg.aggregate(planted.U)
    assert np.isfinite(out).all()
    assert agg.excluded_.tolist() == [i == planted.nan for i in range(12)]
    assert agg.weights_ == pytest.approx(np.where(np.arange(12) == planted.nan, 0, 1 / 11))
    # no defense: one client at 1e6 x an honest update moves the mean by ~1e6 |u| / 11
    assert np.linalg.norm(out - planted.mu) > 1e4
    assert FedAvg.robust is False and FedAvg.uses_weights is True


def test_fedavg_hand_computed_weights():
    out = FedAvg().aggregate(np.array([[0.0], [4.0]]), weights=[3, 1])  # (3 * 0 + 1 * 4) / 4
    assert out.tolist() == [1.0]


def test_median_resists_the_planted_outlier(planted):
    agg = CoordinateMedian()
    out = agg.aggregate(planted.U)
    assert np.linalg.norm(out - planted.mu) < 0.5
    assert agg.weights_[planted.outlier] < 0.1 and agg.weights_[planted.nan] == 0
    assert agg.excluded_[planted.nan]
    assert CoordinateMedian.uses_weights is False


def test_median_ignores_weights_and_is_deterministic(planted):
    U = planted.U[planted.honest]
    a = CoordinateMedian().aggregate(U)
    assert np.array_equal(a, CoordinateMedian().aggregate(U, weights=np.arange(1, 11)))
    assert np.array_equal(a, CoordinateMedian().aggregate(U))


def test_dropped_nonfinite_clients_are_charged_to_f():
    U = np.array([[0.0], [1.0], [3.0], [10.0], [np.nan]])
    # n = 5 given, f = 1: 5 > 4 holds; the NaN client was one of the Byzantine ones, so Krum runs
    # on the 4 others with f_eff = 0 (2 nearest neighbours): scores 10, 5, 13, 130 -> 1.0
    agg = Krum(f=1)
    assert agg.aggregate(U).tolist() == [1.0]
    assert agg.n_dropped_ == 1
    assert agg.scores_.tolist() == [10.0, 5.0, 13.0, 130.0, np.inf]


def test_zero_weight_clients_are_not_part_of_the_round():
    from poisonlab.exceptions import AssumptionError

    U = np.array([[0.0], [1.0], [3.0], [10.0], [2.0]])
    # five clients pass Krum's n > 2f + 2 for f = 1, but one of them has weight 0: n = 4
    with pytest.raises(AssumptionError, match=r"Krum needs n > 2f \+ 2; got n=4, f=1"):
        Krum(f=1).aggregate(U, weights=[1, 1, 1, 1, 0])
