"""FoolsGold: sybils over rounds, history keyed by client id, the planted round, its limits."""

import numpy as np
import pytest

from poisonlab.defenses.federated import FoolsGold
from poisonlab.exceptions import DataError


def _sybil_rounds(n_rounds=4, seed=0):
    """10 honest clients with their own (non-IID) directions and 5 sybils pushing one target."""
    rng = np.random.default_rng(seed)
    honest_dirs = rng.normal(size=(10, 50))
    target = rng.normal(size=50)
    for _ in range(n_rounds):
        honest = honest_dirs + 0.3 * rng.normal(size=(10, 50))
        sybils = target + 1e-3 * rng.normal(size=(5, 50))
        yield np.vstack([honest, sybils])


def test_sybils_get_weight_zero_over_rounds():
    agg = FoolsGold()
    ids = [f"h{i}" for i in range(10)] + [f"s{i}" for i in range(5)]
    for U in _sybil_rounds():
        out = agg.aggregate(U, client_ids=ids)
        assert agg.weights_[10:].max() < 1e-3
        assert (agg.weights_[:10] > 0.05).all()
        assert out == pytest.approx(agg.weights_[:10] @ U[:10])
    assert set(agg.history_) == set(ids)


def test_history_follows_client_ids_not_positions():
    ids = [f"h{i}" for i in range(10)] + [f"s{i}" for i in range(5)]
    a, b = FoolsGold(), FoolsGold()
    rng = np.random.default_rng(3)
    for U in _sybil_rounds():
        perm = rng.permutation(15)
        a.aggregate(U, client_ids=ids)
        b.aggregate(U[perm], client_ids=[ids[i] for i in perm])
        assert b.weights_ == pytest.approx(a.weights_[perm])


def test_planted_outlier_parallel_to_an_honest_client_is_excluded(planted):
    # the outlier is 1e6 x honest client 3: cosine 1 with it, so both get weight 0, as sybils
    agg = FoolsGold()
    out = agg.aggregate(planted.U)
    assert agg.weights_[planted.outlier] == 0 and agg.weights_[planted.nan] == 0
    assert agg.excluded_[planted.nan]
    assert np.linalg.norm(out - planted.mu) < 1.0


def test_a_lone_attacker_is_not_down_weighted(planted):
    # the documented limit (robust = False): IID honest clients look alike, a lone attacker in a
    # fresh direction looks unique and takes the round
    U = planted.U.copy()
    U[planted.outlier] = 1e3 * np.random.default_rng(4).normal(size=50)
    agg = FoolsGold()
    out = agg.aggregate(U)
    assert agg.weights_[planted.outlier] > 0.5
    assert np.linalg.norm(out - planted.mu) > 100
    assert FoolsGold.robust is False


def test_reset_deterministic_and_bad_ids(planted):
    U = planted.U[planted.honest]
    a = FoolsGold()
    first = a.aggregate(U)
    a.aggregate(U)
    assert np.array_equal(a.reset().aggregate(U), first)
    assert np.array_equal(FoolsGold().aggregate(U), first)
    with pytest.raises(DataError, match="client_ids has shape"):
        FoolsGold().aggregate(U, client_ids=[1, 2])
    with pytest.raises(DataError, match="unique"):
        FoolsGold().aggregate(U, client_ids=[0] * 10)
    with pytest.raises(DataError, match="call reset"):
        a.aggregate(U[:, :5])
