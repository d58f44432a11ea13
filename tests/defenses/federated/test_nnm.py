"""NNM: mixing before another rule, the planted round, n > 2f, the wrapped rule."""

import numpy as np
import pytest

from poisonlab.defenses.federated import NNM, CenteredClipping, FedAvg, FLTrust, Krum, TrimmedMean
from poisonlab.exceptions import AssumptionError, InvalidParameterError


def test_planted_outlier_and_nan_get_no_weight(planted):
    agg = NNM(f=2)
    out = agg.aggregate(planted.U)
    # 11 finite clients, f_eff = 1: every honest update mixes with the 9 other honest ones
    assert out == pytest.approx(planted.honest_mean)
    assert agg.weights_[planted.outlier] == pytest.approx(0, abs=1e-12) and agg.weights_[planted.nan] == 0
    assert agg.weights_.sum() == pytest.approx(1.0)
    assert isinstance(agg.aggregator_, TrimmedMean) and agg.aggregator_.f == 2  # restored after the round


def test_refuses_when_n_is_at_most_2f():
    U = np.arange(8.0).reshape(4, 2)
    with pytest.raises(AssumptionError, match=r"^NNM needs n > 2f; got n=4, f=2$"):
        NNM(f=2).aggregate(U)
    # the wrapped rule refuses on its own assumption
    with pytest.raises(AssumptionError, match=r"^Krum needs n > 2f \+ 2; got n=4, f=1$"):
        NNM(f=1, aggregator="krum").aggregate(U)


def test_wraps_an_object_without_modifying_it(planted):
    inner = Krum(f=2)
    agg = NNM(f=2, aggregator=inner)
    out = agg.aggregate(planted.U)
    assert not hasattr(inner, "weights_") and agg.aggregator_ is not inner
    assert np.linalg.norm(out - planted.mu) < 0.5
    assert agg.weights_[planted.outlier] == pytest.approx(0, abs=1e-12)


def test_uses_weights_and_robust_are_those_of_the_wrapped_rule():
    assert NNM(f=1).uses_weights is False and NNM(f=1).robust is True
    assert NNM(f=1, aggregator="fedavg").uses_weights is True and NNM(f=1, aggregator=FedAvg()).robust is False
    U = np.random.default_rng(0).normal(size=(7, 3))
    w = np.arange(1, 8)
    assert not np.allclose(NNM(f=1, aggregator="fedavg").aggregate(U, w), NNM(f=1, aggregator="fedavg").aggregate(U))


def test_passes_context_and_reset_to_the_wrapped_rule(planted):
    U = planted.U[planted.honest]
    out = NNM(f=1, aggregator="fltrust").aggregate(U, server_update=planted.mu)
    assert np.isfinite(out).all()
    with pytest.raises(InvalidParameterError, match="FLTrust.aggregate needs"):
        NNM(f=1, aggregator="fltrust").aggregate(U)
    agg = NNM(f=1, aggregator=CenteredClipping(tau=1.0))
    first = agg.aggregate(U)
    assert not np.allclose(agg.aggregate(U), first)
    assert np.array_equal(agg.reset().aggregate(U), first)


def test_unknown_or_unbuildable_wrapped_rule():
    U = np.arange(10.0).reshape(5, 2)
    with pytest.raises(InvalidParameterError, match="NNM.aggregator must be an aggregator or one of"):
        NNM(f=1, aggregator="no_such_rule").aggregate(U)
    with pytest.raises(InvalidParameterError, match="NNM.aggregator='norm_clipping' needs parameters"):
        NNM(f=1, aggregator="norm_clipping").aggregate(U)
    with pytest.raises(InvalidParameterError, match="another rule"):
        NNM(f=1, aggregator="nnm").aggregate(U)


def test_fltrust_zero_trust_inside_nnm():
    U = np.array([[-1.0, 0.0], [-1.1, 0.1], [-0.9, -0.1], [-1.0, 0.2], [-1.2, 0.0]])
    agg = NNM(f=1, aggregator=FLTrust())
    assert agg.aggregate(U, server_update=np.array([1.0, 0.0])).tolist() == [0.0, 0.0]
    assert agg.weights_.tolist() == [0.0] * 5
