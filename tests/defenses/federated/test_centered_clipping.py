"""CenteredClipping: the planted round over several rounds, state, reset."""

import numpy as np
import pytest

from poisonlab.defenses.federated import CenteredClipping
from poisonlab.exceptions import DataError

from .conftest import planted_round


def test_planted_outlier_is_clipped_away_over_rounds():
    agg = CenteredClipping(tau=1.0, n_iter=5)
    for seed in range(6):  # the honest mean is the same every round; fresh noise
        rnd = planted_round(seed=0)
        rng = np.random.default_rng(100 + seed)
        U = rnd.U.copy()
        U[rnd.honest] = rnd.mu + 0.1 * rng.normal(size=(10, 50))
        U[rnd.outlier] = 1e6 * U[rnd.honest[3]]
        out = agg.aggregate(U)
    assert np.linalg.norm(out - rnd.mu) < 0.5
    assert agg.weights_[rnd.outlier] < 1e-4 and agg.weights_[rnd.nan] == 0
    assert agg.excluded_[rnd.nan]


def test_first_round_moves_at_most_n_iter_tau(planted):
    # from zeros, every honest update is ~7 away: all are clipped and the result lags
    out = CenteredClipping(tau=1.0, n_iter=2).aggregate(planted.U)
    assert np.linalg.norm(out) <= 2.0 + 1e-9


def test_the_outlier_moves_the_result_by_at_most_its_weight_times_tau(planted):
    U = planted.U[planted.honest]
    start = planted.honest_mean
    with_outlier = np.vstack([U, 1e6 * U[3]])
    a, b = CenteredClipping(tau=1.0, n_iter=1), CenteredClipping(tau=1.0, n_iter=1)
    a.center_ = start.copy()
    b.center_ = start.copy()
    clean = a.aggregate(np.vstack([U, start]))  # an 11th client sitting on the start: no pull
    dragged = b.aggregate(with_outlier)
    assert np.linalg.norm(dragged - clean) <= 1.0 / 11 + 1e-9


def test_stateful_reset_and_determinism(planted):
    a = CenteredClipping(tau=1.0)
    first = a.aggregate(planted.U)
    second = a.aggregate(planted.U)
    assert not np.allclose(first, second)  # the second round starts from the first's result
    assert np.array_equal(a.center_, second)
    assert np.array_equal(a.reset().aggregate(planted.U), first)
    b = CenteredClipping(tau=1.0)
    assert np.array_equal(b.aggregate(planted.U), first) and np.array_equal(b.aggregate(planted.U), second)
    assert not hasattr(a.clone(), "center_")


def test_a_new_parameter_size_needs_reset(planted):
    a = CenteredClipping()
    a.aggregate(planted.U)
    with pytest.raises(DataError, match="call reset"):
        a.aggregate(planted.U[:, :10])
    a.reset().aggregate(planted.U[:, :10])


def test_uses_weights():
    U = np.array([[0.0], [1.0]])
    agg = CenteredClipping(tau=10.0, n_iter=1)
    assert agg.aggregate(U, weights=[1, 3]).tolist() == [0.75]
