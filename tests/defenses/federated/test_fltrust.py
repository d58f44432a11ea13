"""FLTrust: trust from the server's update, zero trust, the planted round."""

import numpy as np
import pytest

from poisonlab.defenses.federated import FLTrust


def _server_update(planted):
    return planted.mu + 0.1 * np.random.default_rng(9).normal(size=50)


def test_planted_outlier_is_rescaled_and_nan_dropped(planted):
    g0 = _server_update(planted)
    agg = FLTrust()
    out = agg.aggregate(planted.U, server_update=g0)
    assert np.linalg.norm(out - planted.mu) < 0.5
    assert agg.weights_[planted.nan] == 0 and agg.excluded_[planted.nan]
    assert agg.trust_scores_[planted.nan] == 0
    # the boosted update points the honest way: it keeps its trust but is rescaled to |g0|
    assert agg.trust_scores_[planted.outlier] > 0.9


def test_a_client_opposite_to_the_server_gets_no_trust(planted):
    g0 = _server_update(planted)
    U = planted.U[planted.honest].copy()
    U[0] = -5 * U[0]
    agg = FLTrust()
    out = agg.aggregate(U, server_update=g0)
    assert agg.trust_scores_[0] == 0 and agg.weights_[0] == 0 and agg.excluded_[0]
    assert (agg.trust_scores_[1:] > 0.9).all()
    assert np.linalg.norm(out) == pytest.approx(np.linalg.norm(g0), rel=0.01)  # rescaled to |g0|


def test_zero_total_trust_returns_zeros_and_excludes_everyone():
    agg = FLTrust()
    out = agg.aggregate(np.array([[-1.0, 0.0], [0.0, 1.0], [np.nan, 0.0]]), server_update=np.array([1.0, 0.0]))
    assert out.tolist() == [0.0, 0.0]
    assert agg.weights_.tolist() == [0.0, 0.0, 0.0] and agg.excluded_.all()


def test_ignores_client_weights_and_is_deterministic(planted):
    g0 = _server_update(planted)
    a = FLTrust().aggregate(planted.U, server_update=g0)
    assert np.array_equal(a, FLTrust().aggregate(planted.U, server_update=g0))
    assert np.allclose(a, FLTrust().aggregate(planted.U, np.arange(1, 13), server_update=g0))
