"""Bulyan: the planted round, the n >= 4f + 3 assumption, the per-coordinate stage."""

import numpy as np
import pytest

from poisonlab.defenses.federated import Bulyan, Krum
from poisonlab.exceptions import AssumptionError


def test_planted_outlier_and_nan_get_no_weight(planted):
    agg = Bulyan(f=2)
    out = agg.aggregate(planted.U)
    assert np.linalg.norm(out - planted.mu) < 0.5
    assert agg.weights_[planted.outlier] == 0 and agg.weights_[planted.nan] == 0
    assert agg.excluded_[planted.outlier] and agg.excluded_[planted.nan]
    assert agg.weights_.sum() == pytest.approx(1.0)


def test_refuses_below_4f_plus_3():
    U = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(AssumptionError, match=r"^Bulyan needs n >= 4f \+ 3; got n=10, f=2$"):
        Bulyan(f=2).aggregate(U)
    Bulyan(f=2).aggregate(np.random.default_rng(0).normal(size=(11, 3)))


def test_bounds_a_coordinate_that_krum_lets_through():
    # El Mhamdi et al.'s hidden vulnerability: an attacker close in L2 but far along one
    # coordinate. 9 honest updates in 200 dims; 2 attackers equal to the honest mean except for
    # one coordinate pushed by 1 (L2 distance to the mean ~ 1, the honest ones are ~ 1.4 away).
    rng = np.random.default_rng(0)
    honest = rng.normal(0, 0.1, size=(9, 200))
    bad = np.tile(honest.mean(axis=0), (2, 1))
    bad[:, 0] += 1.0
    U = np.vstack([bad, honest])
    krum = Krum(f=2)
    assert abs(krum.aggregate(U)[0]) > 0.9
    assert int(np.argmax(krum.weights_)) in (0, 1)  # Krum picks an attacker
    assert abs(Bulyan(f=2).aggregate(U)[0]) < 0.2  # the coordinate stage drops the pushed values


def test_deterministic_and_ignores_weights(planted):
    a = Bulyan(f=2).aggregate(planted.U)
    assert np.array_equal(a, Bulyan(f=2).aggregate(planted.U))
    assert np.array_equal(a, Bulyan(f=2).aggregate(planted.U, weights=np.arange(1, 13)))
