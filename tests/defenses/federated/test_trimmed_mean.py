"""TrimmedMean: the planted round, f or beta, the 2f < n assumption."""

import numpy as np
import pytest

from poisonlab.defenses.federated import TrimmedMean
from poisonlab.defenses.federated.aggregate import trimmed_mean
from poisonlab.exceptions import AssumptionError, InvalidParameterError

from .conftest import planted_round


def test_planted_outlier_and_nan_are_trimmed(planted):
    agg = TrimmedMean(f=2)
    out = agg.aggregate(planted.U)
    assert np.linalg.norm(out - planted.mu) < 0.5
    # the outlier is the largest or smallest value at every coordinate: trimmed everywhere
    assert agg.weights_[planted.outlier] == 0 and agg.excluded_[planted.outlier]
    assert agg.weights_[planted.nan] == 0 and agg.excluded_[planted.nan]
    assert agg.weights_.sum() == pytest.approx(1.0)


def test_nan_client_counts_against_f(planted):
    # 12 given, f = 2; the NaN client is dropped and charged: trim f_eff = 1 of the 11 left
    kept = np.delete(planted.U, planted.nan, axis=0)
    assert np.array_equal(TrimmedMean(f=2).aggregate(planted.U), trimmed_mean(kept, 1))


def test_beta_trims_a_fraction():
    U = planted_round().U[planted_round().honest]  # 10 clients
    # beta = 0.25 of 10 -> floor(2.5) = 2 from each end
    assert np.array_equal(TrimmedMean(beta=0.25).aggregate(U), trimmed_mean(U, 2))
    assert np.array_equal(TrimmedMean(beta=0.0).aggregate(U), U.mean(axis=0))


def test_refuses_when_2f_reaches_n():
    U = np.arange(8.0).reshape(4, 2)
    with pytest.raises(AssumptionError, match=r"^TrimmedMean needs 2f < n; got n=4, f=2$"):
        TrimmedMean(f=2).aggregate(U)
    assert TrimmedMean(f=1).aggregate(U).tolist() == [3.0, 4.0]


def test_needs_exactly_one_of_f_and_beta():
    U = np.arange(8.0).reshape(4, 2)
    for kwargs in ({}, {"f": 1, "beta": 0.1}):
        with pytest.raises(InvalidParameterError, match="exactly one of f .* or beta"):
            TrimmedMean(**kwargs).aggregate(U)


def test_ignores_weights_and_is_deterministic(planted):
    U = planted.U
    a = TrimmedMean(f=2).aggregate(U)
    assert np.array_equal(a, TrimmedMean(f=2).aggregate(U, weights=np.arange(1, 13)))
    assert np.array_equal(a, TrimmedMean(f=2).aggregate(U))
