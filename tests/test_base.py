"""Validation, declared constraints, thresholds, poison counts and result objects."""

import inspect
import numbers
import typing

import numpy as np
import pytest

from poisonlab import AssumptionError, DataError, InvalidParameterError, NotFittedError, PoisonResult
from poisonlab._validation import (
    HasMethods,
    Interval,
    Options,
    check_array,
    check_labels,
    check_param,
    check_random_state,
    check_scalar,
    check_seed,
    describe_constraints,
    invalid_values,
    make_constraint,
)
from poisonlab.base import BaseAggregator, contamination_threshold, fpr_threshold, per_class_cut, resolve_n_poison
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


# --- declared parameter constraints ------------------------------------------------------------


def _ok(constraint, value):
    return make_constraint(constraint).is_satisfied_by(value)


def test_interval_ends_types_and_non_finite_values():
    half_open = Interval(numbers.Real, 0, 1, closed="right")
    assert not _ok(half_open, 0) and _ok(half_open, 1) and _ok(half_open, 0.5) and _ok(half_open, np.float32(0.5))
    assert not _ok(half_open, float("nan")) and not _ok(half_open, True) and not _ok(half_open, "0.5")
    count = Interval(numbers.Integral, 1, None, closed="left")
    assert _ok(count, 1) and _ok(count, np.int64(7)) and not _ok(count, 0) and not _ok(count, 2.0)
    assert not _ok(count, True)  # True is an int to Python, not to a user
    assert not _ok(Interval(numbers.Real, 0, None, closed="left"), float("inf"))
    assert str(half_open) == "in (0, 1]" and str(count) == "an int in [1, inf)"
    with pytest.raises(InvalidParameterError, match="closed must be one of"):
        Interval(numbers.Real, 0, 1, closed="open")


def test_named_constraints():
    assert _ok("random_state", None) and _ok("random_state", 3) and _ok("random_state", np.random.default_rng(0))
    assert not _ok("random_state", -1) and not _ok("random_state", np.random.RandomState(0))
    assert not _ok("random_state", True) and not _ok("random_state", 1.0)
    assert _ok("boolean", False) and _ok("boolean", np.bool_(True)) and not _ok("boolean", 1)
    assert _ok("array-like", (0.0, 1.0)) and _ok("array-like", np.zeros(3)) and not _ok("array-like", "ab")
    assert not _ok("array-like", 3) and not _ok("array-like", {"a": 1})
    assert _ok("class_index", 0) and not _ok("class_index", -1) and not _ok("class_index", 1.0)
    assert _ok(callable, len) and not _ok(callable, 3)
    assert _ok(None, None) and not _ok(None, 0)
    assert _ok(str, "x") and not _ok(str, 1) and not _ok(int, True) and _ok(bool, True)
    assert _ok(typing.Mapping, {"a": 1}) and not _ok(typing.Mapping, [("a", 1)])
    assert _ok(Options(("a", "b")), "a") and not _ok(Options(("a", "b")), "c") and not _ok(Options(("a",)), 0)
    assert _ok(HasMethods("fit"), KNNLabelConsistency()) and not _ok(HasMethods("fit"), object())
    with pytest.raises(InvalidParameterError, match="unknown constraint 'seed'"):
        make_constraint("seed")


def test_check_param_names_the_parameter_what_it_must_be_and_what_it_got():
    rate = [Interval(numbers.Real, 0, 1, closed="right"), None]
    assert check_param(None, rate, "X.poison_rate") is None
    with pytest.raises(InvalidParameterError, match=r"^BadNets.poison_rate must be in \(0, 1\] or None; got 1.5$"):
        check_param(1.5, rate, "BadNets.poison_rate")
    assert describe_constraints([Interval(numbers.Real, 0, 0.5, closed="right"), Options(("auto",))]) == \
        "in (0, 0.5] or 'auto'"
    with pytest.raises(InvalidParameterError, match=r"got <array \(1000,\) float64>"):
        check_param(np.zeros(1000), [None], "X.key")


@pytest.mark.parametrize("constraints", [
    [Interval(numbers.Real, 0, 1, closed="neither")], [Interval(numbers.Integral, 2, None, closed="left"), None],
    [Options(("a", "b"))], ["random_state"], ["boolean"], ["array-like", None], ["class_index"], [callable, None],
    [str], [HasMethods("fit", "predict_proba"), None],
])
def test_invalid_values_are_refused_by_every_constraint_of_the_list(constraints):
    bad = invalid_values(constraints)
    assert bad
    for v in bad:
        assert not any(make_constraint(c).is_satisfied_by(v) for c in constraints), v


def test_check_seed_keeps_ints_and_draws_from_generators():
    assert check_seed(7) == 7 and check_seed(np.int64(7)) == 7
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert check_seed(g1) == check_seed(g2) and 0 <= check_seed(g1) < 2**32
    assert isinstance(check_seed(None), int)
    with pytest.raises(InvalidParameterError, match="random_state must be a non-negative int; got -1"):
        check_seed(-1)


def test_fit_checks_the_declared_parameters_and_keeps_its_signature():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(InvalidParameterError, match=r"KNNLabelConsistency.n_neighbors must be an int in \[1, inf\)"):
        KNNLabelConsistency(n_neighbors=0).fit(X, np.arange(20) % 2)
    assert list(inspect.signature(KNNLabelConsistency.fit).parameters) == ["self", "X", "y"]
    assert KNNLabelConsistency.fit.__doc__.startswith("Score each row")


def test_aggregate_checks_the_declared_parameters():
    class Trimmed(BaseAggregator):
        _parameter_constraints = {"beta": [Interval(numbers.Real, 0, 0.5, closed="left")]}

        def __init__(self, *, beta=0.1):
            self.beta = beta

        def _aggregate(self, U, w):
            return U.mean(axis=0), w

    assert Trimmed().aggregate(np.ones((3, 2))).tolist() == [1.0, 1.0]
    with pytest.raises(InvalidParameterError, match=r"Trimmed.beta must be in \[0, 0.5\); got 0.7"):
        Trimmed(beta=0.7).aggregate(np.ones((3, 2)))


def test_apply_trigger_checks_the_declared_parameters():
    from poisonlab.attacks.data import BadNets

    with pytest.raises(InvalidParameterError, match="BadNets.margin must be an int in"):
        BadNets(value=1.0, margin=-1).apply_trigger(np.zeros((2, 1, 8, 8)))


def test_per_class_cut_hand_computed():
    s = np.array([1, 2, 3, 4, 10, 20, 30, 40.0])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    cut = per_class_cut(s, y, 0.25)  # ceil(0.25 * 4) = 1 flagged per class
    assert cut.tolist() == [3, 3, 3, 3, 30, 30, 30, 30]
    assert np.flatnonzero(s > cut).tolist() == [3, 7]
    assert (s > per_class_cut(s, y, 0.5)).sum() == 4
    assert (s > per_class_cut(s, y, 1.0)).all()  # everything removed: below the lowest score


def test_normal_boundary_hand_computed():
    from scipy.stats import norm

    from poisonlab.base import normal_fpr_threshold

    ref = np.array([1.0, 2.0, 3.0, 4.0] * 25)  # mean 2.5, ML std sqrt(1.25)
    assert normal_fpr_threshold(ref, 0.01) == pytest.approx(2.5 + norm.ppf(0.99) * np.sqrt(1.25))
    assert normal_fpr_threshold(ref, 0.5) == pytest.approx(2.5)
    with pytest.raises(AssumptionError, match="needs at least 100"):
        normal_fpr_threshold(ref[:50], 0.01)
    with pytest.raises(AssumptionError, match="vary"):
        normal_fpr_threshold(np.ones(200), 0.01)
