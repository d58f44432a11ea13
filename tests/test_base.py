"""Validation, thresholds, poison counts and result objects."""

import numpy as np
import pytest

from poisonlab import AssumptionError, DataError, InvalidParameterError, NotFittedError, PoisonResult
from poisonlab._validation import check_array, check_labels, check_random_state, check_scalar
from poisonlab.base import contamination_threshold, fpr_threshold, resolve_n_poison
from poisonlab.defenses.data import KNNLabelConsistency


def test_check_scalar_names_parameter_constraint_and_value():
    with pytest.raises(InvalidParameterError, match=r"alpha must be in \(0, 1\); got 1.5"):
        check_scalar(1.5, "alpha", low=0, high=1, low_inclusive=False, high_inclusive=False)
    with pytest.raises(InvalidParameterError, match="epochs must be int"):
        check_scalar(2.5, "epochs", int)
    with pytest.raises(InvalidParameterError, match="must be Real"):
        check_scalar(True, "lr")
    with pytest.raises(InvalidParameterError, match="finite"):
        check_scalar(float("nan"), "lr")


def test_check_array_rejects_nan_wrong_rank_and_empty():
    with pytest.raises(DataError, match="NaN or infinite values in 1 sample.*index 2"):
        check_array(np.array([[0.0], [1.0], [np.nan]]))
    with pytest.raises(DataError, match="must have 3 to any dimensions; got shape"):
        check_array(np.zeros((4, 4)), min_ndim=3)
    with pytest.raises(DataError, match="at least 1 sample"):
        check_array(np.zeros((0, 3)))


def test_check_labels():
    assert check_labels(np.array([0.0, 2.0])).dtype == np.int64
    with pytest.raises(DataError, match="label 5 but there are only 3 classes"):
        check_labels([0, 5], n_classes=3)
    with pytest.raises(DataError, match="non-negative"):
        check_labels([0, -1])
    with pytest.raises(DataError, match="integer class labels"):
        check_labels([0.5, 1.0])
    with pytest.raises(DataError, match="2 labels but X has 3"):
        check_labels([0, 1], 3)


def test_random_state_never_touches_global_state():
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    g = check_random_state(3)
    g.random(10)
    assert np.array_equal(np.random.get_state()[1], before)
    assert check_random_state(3).integers(1000) == check_random_state(3).integers(1000)
    with pytest.raises(InvalidParameterError):
        check_random_state("seed")


def test_resolve_n_poison():
    assert resolve_n_poison(0.012, None, 50_000, 45_000) == 600
    assert resolve_n_poison(0.5, 7, 100, 90) == 7  # n_poison overrides the rate
    with pytest.raises(InvalidParameterError, match="poison_rate must be in"):
        resolve_n_poison(1.5, None, 100, 100)
    with pytest.raises(InvalidParameterError, match="rounds to 0"):
        resolve_n_poison(0.001, None, 100, 100)
    with pytest.raises(InvalidParameterError, match="only 10 candidate"):
        resolve_n_poison(0.5, None, 100, 10)
    with pytest.raises(InvalidParameterError, match="give poison_rate"):
        resolve_n_poison(None, None, 100, 100)


def test_thresholds_hand_computed():
    scores = np.arange(11, dtype=float)  # 0..10
    assert contamination_threshold(scores, 0.1) == pytest.approx(9.0)
    ref = np.arange(100, dtype=float)
    assert fpr_threshold(ref, 0.05) == 95.0  # 5 of 100 clean references lie above 95
    assert (ref > fpr_threshold(ref, 0.05)).sum() == 4
    with pytest.raises(AssumptionError, match="needs at least 100 clean reference"):
        fpr_threshold(np.arange(50.0), 0.01)


def test_poison_result_is_frozen_and_consistent():
    r = PoisonResult(np.zeros((3, 2)), np.zeros(3, int), np.array([True, False, False]), np.array([0]), 1)
    assert r.n_poison == 1
    with pytest.raises(AttributeError):
        r.target = 2
    with pytest.raises(TypeError):
        r.info["x"] = 1
    with pytest.raises(DataError, match="disagree in length"):
        PoisonResult(np.zeros((2, 2)), np.zeros(3, int), np.zeros(3, bool), np.array([], int))


def test_unfitted_detector_raises_and_bad_inputs():
    det = KNNLabelConsistency()
    with pytest.raises(NotFittedError, match="not fitted"):
        det.score(np.zeros((2, 2)), [0, 1])
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        det.fit(X_nan, y)
    with pytest.raises(DataError, match="19 labels but X has 20"):
        det.fit(X, y[:-1])
    with pytest.raises(InvalidParameterError, match="contamination must be in"):
        KNNLabelConsistency(contamination=0.0).fit(X, y)
    with pytest.raises(DataError, match="needs more than 30 samples"):
        KNNLabelConsistency(n_neighbors=30).fit(X, y)
    fitted = KNNLabelConsistency(n_neighbors=3).fit(X, y)
    with pytest.raises(DataError, match="fitted on 3"):
        fitted.score(np.zeros((2, 4)), [0, 1])


def test_knn_label_finds_planted_flips():
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 8, size=(5, 16))
    y = np.repeat(np.arange(5), 200)
    X = centers[y] + rng.normal(size=(1000, 16))
    flipped = rng.choice(1000, 50, replace=False)
    y_bad = y.copy()
    y_bad[flipped] = (y[flipped] + 1) % 5
    det = KNNLabelConsistency(n_neighbors=10, contamination=0.05).fit(X, y_bad)
    recall = det.flags_[flipped].mean()
    assert recall >= 0.95  # planted-poison recall floor
    assert det.flags_.sum() <= 60
    assert det.score(X[:5], y[:5]).max() < 0.5
