"""Krum and Multi-Krum: the planted round, the n > 2f + 2 assumption, non-finite clients."""

import numpy as np
import pytest

from poisonlab.defenses.federated import Krum, MultiKrum
from poisonlab.exceptions import AssumptionError


def test_krum_picks_an_honest_update(planted):
    agg = Krum(f=2)
    out = agg.aggregate(planted.U)
    chosen = int(np.argmax(agg.weights_))
    assert chosen in planted.honest and np.array_equal(out, planted.U[chosen])
    assert agg.weights_.tolist() == [float(i == chosen) for i in range(12)]
    assert agg.excluded_.sum() == 11
    assert np.linalg.norm(out - planted.mu) < 1.0  # one honest update: within the honest spread
    assert agg.scores_[planted.nan] == np.inf and agg.scores_[planted.outlier] > 1e10


def test_multi_krum_averages_the_honest_updates(planted):
    agg = MultiKrum(f=2)
    out = agg.aggregate(planted.U)
    # m = n - f: 11 finite clients, f_eff = 1 -> the 10 best scores, i.e. every honest client
    assert np.flatnonzero(agg.weights_).tolist() == planted.honest.tolist()
    assert out == pytest.approx(planted.honest_mean)
    assert np.linalg.norm(out - planted.mu) < 0.5


def test_multi_krum_weights_the_selected_clients(planted):
    U = planted.U[planted.honest]
    w = np.arange(1.0, 11.0)
    agg = MultiKrum(f=1, m=3)
    out = agg.aggregate(U, weights=w)
    sel = np.flatnonzero(agg.weights_)
    assert len(sel) == 3
    assert agg.weights_[sel] == pytest.approx(w[sel] / w[sel].sum())
    assert out == pytest.approx(w[sel] @ U[sel] / w[sel].sum())


@pytest.mark.parametrize("cls", [Krum, MultiKrum])
def test_refuses_when_n_is_at_most_2f_plus_2(cls):
    U = np.arange(8.0).reshape(4, 2)
    with pytest.raises(AssumptionError, match=rf"^{cls.__name__} needs n > 2f \+ 2; got n=4, f=1$"):
        cls(f=1).aggregate(U)
    cls(f=1).aggregate(np.arange(10.0).reshape(5, 2))  # n = 5 > 4


def test_refuses_when_more_than_f_nonfinite_clients_leave_too_few():
    U = np.array([[0.0], [1.0], [np.nan], [np.inf], [np.nan]])
    # n = 5 > 2f + 2 = 4 for f = 1, but 3 clients are dropped: 2 left with f_eff = 0, 2 > 2 fails
    with pytest.raises(AssumptionError, match=r"dropping 3 non-finite update\(s\) leaves n=2, f=0"):
        Krum(f=1).aggregate(U)


def test_multi_krum_refuses_m_above_n_minus_f():
    U = np.arange(12.0).reshape(6, 2)
    with pytest.raises(AssumptionError, match=r"^MultiKrum needs m <= n - f; got n=6, f=1, m=6$"):
        MultiKrum(f=1, m=6).aggregate(U)


def test_krum_is_deterministic_and_follows_the_clients(planted):
    U = planted.U
    perm = np.random.default_rng(1).permutation(12)
    a, b = Krum(f=2), Krum(f=2)
    out = a.aggregate(U)
    assert np.array_equal(out, Krum(f=2).aggregate(U))
    assert np.array_equal(b.aggregate(U[perm]), out)
    assert np.array_equal(b.weights_, a.weights_[perm])
