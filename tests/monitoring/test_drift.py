"""Drift between model versions (poisonlab.monitoring.drift): flips and KS tests by hand, newly
firing probes on a planted backdoor."""

import numpy as np
import pytest
from scipy.stats import ks_2samp

from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.monitoring.canaries import build_canary_suite
from poisonlab.monitoring.drift import compare_predictions, drift_between, flip_rates, ks_two_sample

from ._digits_models import TARGET, classifier, digits


def test_flip_rates_by_hand():
    old = [0, 0, 1, 1, 2, 2]
    new = [0, 1, 1, 1, 0, 1]
    y = [0, 0, 1, 1, 2, 2]
    overall, per, counts = flip_rates(old, new, y, 4)
    assert overall == pytest.approx(3 / 6)
    assert per[:3].tolist() == [0.5, 0.0, 1.0] and np.isnan(per[3])
    assert counts.tolist() == [2, 2, 2, 0]
    with pytest.raises(DataError, match="1-D of one length"):
        flip_rates([0, 1], [0], [0, 1], 2)


def test_ks_statistic_and_p_value_by_hand():
    # disjoint samples of 3: D = 1, exact two-sided p = 2 / C(6, 3) = 0.1
    D, p = ks_two_sample([1, 2, 3], [4, 5, 6])
    assert D == 1.0 and p == pytest.approx(0.1)
    # ECDFs of {1,2,3,4} and {3,4,5,6}: largest gap 0.5 (at 2..3); equals scipy's
    D, p = ks_two_sample([1, 2, 3, 4], [3, 4, 5, 6])
    assert D == pytest.approx(0.5) and p == pytest.approx(ks_2samp([1, 2, 3, 4], [3, 4, 5, 6]).pvalue)
    assert ks_two_sample([1.0], [1.0, 2.0]) is None
    D, p = ks_two_sample([0.5, 0.7, 0.9], [0.5, 0.7, 0.9])
    assert D == 0.0 and p == 1.0


def test_compare_predictions_by_hand():
    old = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    new = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.1, 0.9]])
    res = compare_predictions(old, new, np.array([0, 0, 1, 1]), classes=["a", "b"])
    assert res.flip_rate == 0.25 and res.class_flip_rates.tolist() == [0.5, 0.0]
    # confidences: old [.9 .8 .7 .8], new [.9 .6 .7 .9] -> KS D = 0.25 (ECDF gap at 0.6 and at 0.8)
    assert res.ks["statistic"] == pytest.approx(0.25) and res.ks["n"] == 4
    assert res.ks["p_value"] == pytest.approx(ks_2samp([.9, .8, .7, .8], [.9, .6, .7, .9]).pvalue)
    assert [k["statistic"] for k in res.ks_per_class] == pytest.approx([0.5, 0.5])
    assert res.to_dict()["classes"] == ["a", "b"]
    labels = compare_predictions(np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([0, 1, 1]))
    assert labels.ks is None and labels.flip_rate == pytest.approx(1 / 3)
    with pytest.raises(InvalidParameterError, match="alpha must be in"):
        compare_predictions(old, new, np.array([0, 0, 1, 1]), alpha=1.5)
    with pytest.raises(DataError, match="differ in shape"):
        compare_predictions(old, new[:3], np.array([0, 0, 1, 1]))


def test_a_backdoored_new_version_newly_fires_and_a_retrained_clean_one_does_not():
    d = digits()
    suite = build_canary_suite(d.test, n_per_class=10, seed=0)
    res, old, new = drift_between(classifier("clean"), classifier("badnets"), suite,
                                  X_ref=d.test.X[:200], y_ref=d.test.y[:200])
    assert res.n == len(suite) + 200
    fams = {(q["family"], q["target"]) for q in res.newly_firing}
    assert ("badnets", TARGET) in fams
    assert res.flip_rate < 0.1  # clean behaviour barely moves: flips alone would miss it
    same, _, _ = drift_between(classifier("clean"), classifier("clean"), suite)
    assert same.flip_rate == 0.0 and same.newly_firing == [] and same.ks["statistic"] == 0.0
    back, _, _ = drift_between(classifier("badnets"), classifier("clean"), suite)
    assert back.newly_firing == []  # removing a backdoor is not a new one
