"""Contributor reputation: the Beta posterior by hand, evidence bookkeeping, and sybil-like groups
planted among honest contributors."""

import numpy as np
import pytest

from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.provenance.reputation import (
    ReputationBook,
    beta_posterior,
    credible_bounds,
    disagreement_vectors,
    posterior_mean,
)


def test_beta_posterior_by_hand():
    # 3 agreeing, 1 disagreeing sample under the uniform prior: Beta(4, 2), mean 4/6
    book = ReputationBook(n_classes=2, credibility=0.9)
    book.update(["a"] * 4, labels=[1, 1, 0, 0], trusted_pred=[1, 1, 0, 1], round=0)
    r = book.reputation()["a"]
    assert (r["alpha"], r["beta"], r["n"], r["verified"]) == (4.0, 2.0, 4, 3)
    assert r["mean"] == pytest.approx(4 / 6)
    # Beta(4, 2)'s CDF is 5x^4 - 4x^5: the lower 90% bound is where it reaches 0.1
    x = r["lower"]
    assert 5 * x**4 - 4 * x**5 == pytest.approx(0.1, abs=1e-9)
    x = r["upper"]
    assert 5 * x**4 - 4 * x**5 == pytest.approx(0.9, abs=1e-9)


def test_all_good_samples_give_the_closed_form_bound():
    # Beta(a, 1) has CDF x^a: the lower bound at credibility c is (1 - c)^(1/a)
    book = ReputationBook(n_classes=3, credibility=0.95)
    book.update(["b"] * 6, labels=[0, 1, 2, 0, 1, 2], trusted_pred=[0, 1, 2, 0, 1, 2], round=3)
    r = book.reputation()["b"]
    assert r["lower"] == pytest.approx(0.05 ** (1 / 7))
    assert r["mean"] == pytest.approx(7 / 8)
    lo, hi = credible_bounds(np.array([1.0]), np.array([1.0]), 0.95)
    assert lo[0] == pytest.approx(0.05) and hi[0] == pytest.approx(0.95)


def test_pure_functions_match_the_equations():
    a, b = beta_posterior(np.array([2.0, 0.0]), np.array([1.0, 5.0]), prior_alpha=0.5, prior_beta=2.0)
    assert a.tolist() == [2.5, 0.5] and b.tolist() == [3.0, 7.0]
    assert posterior_mean(a, b).tolist() == pytest.approx([2.5 / 5.5, 0.5 / 7.5])
    # counts at [p, l]: 6 agree on class 0, 4 predicted 1 but labelled 0
    V = disagreement_vectors(np.array([[[6, 0], [4, 0]]]))
    assert V.tolist() == [[0.0, 0.0, 0.4, 0.0]]


def test_flags_and_weights_count_as_evidence():
    book = ReputationBook(n_classes=2)
    # the second sample agrees but a detector flagged it: bad evidence, not verified
    book.update(["c", "c", "c"], labels=[0, 0, 1], trusted_pred=[0, 0, 0], flags=[False, True, False],
                weights=[2.0, 1.0, 0.5], round=0)
    r = book.reputation()["c"]
    assert (r["alpha"], r["beta"], r["verified"]) == (3.0, 2.5, 1)


def test_decay_forgets_old_evidence_between_rounds_only():
    book = ReputationBook(n_classes=2, decay=0.5)
    book.update(["d"] * 4, labels=[0] * 4, trusted_pred=[0] * 4, round=1)
    book.update(["d"] * 2, labels=[0] * 2, trusted_pred=[0] * 2, round=1)  # same round: no decay
    assert book.good_["d"] == 6.0
    book.update(["d"] * 2, labels=[1, 1], trusted_pred=[0, 0], round=3)  # two rounds later: x 0.25
    assert book.good_["d"] == pytest.approx(1.5) and book.bad_["d"] == 2.0
    assert book.verified_counts["d"] == 6 and book.n_samples_["d"] == 8
    assert (book.first_round_["d"], book.last_round_["d"]) == (1, 3)


def _honest_and_sybils(rng, n_honest=20, n_sybils=4, per=20, error=0.05):
    ids, labels, pred = [], [], []
    for h in range(n_honest):
        y = rng.integers(0, 2, per)
        p = np.where(rng.random(per) < error, 1 - y, y)  # the trusted model's own mistakes
        ids += [f"h{h}"] * per
        labels.append(y)
        pred.append(p)
    for s in range(n_sybils):
        # spam (the model says 1) labelled ham; the model misses a few of them itself
        p = np.where(rng.random(per) < 0.15, 0, 1)
        ids += [f"s{s}"] * per
        labels.append(np.zeros(per, dtype=int))
        pred.append(p)
    return ids, np.concatenate(labels), np.concatenate(pred)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_sybil_group_is_found_as_one_group(seed):
    rng = np.random.default_rng(seed)
    book = ReputationBook(n_classes=2)
    ids, labels, pred = _honest_and_sybils(rng)
    book.update(ids, labels, pred, round=1)
    groups = book.sybil_groups()
    assert groups == [{"s0", "s1", "s2", "s3"}]
    rep = book.reputation()
    assert max(rep[f"s{s}"]["mean"] for s in range(4)) < 0.3 < min(rep[f"h{h}"]["mean"] for h in range(20))


def test_two_groups_with_different_footprints_stay_apart_and_old_accounts_can_be_left_out():
    book = ReputationBook(n_classes=3)
    per = 10
    # group A: the model says 1, they say 0; group B: the model says 2, they say 0
    book.update(["a1"] * per + ["a2"] * per, [0] * (2 * per), [1] * (2 * per), round=0)
    book.update(["b1"] * per + ["b2"] * per + ["b3"] * per, [0] * (3 * per), [2] * (3 * per), round=2)
    assert book.sybil_groups() == [{"b1", "b2", "b3"}, {"a1", "a2"}]
    assert book.sybil_groups(new_since=1) == [{"b1", "b2", "b3"}]
    assert book.sybil_groups(min_size=3) == [{"b1", "b2", "b3"}]


@pytest.mark.parametrize("kwargs, exc, text", [
    ({"contributors": ["a", "b"], "labels": [0], "trusted_pred": [0, 1]}, DataError, "one length"),
    ({"contributors": ["a"], "labels": [2], "trusted_pred": [0]}, DataError, "labels must be class indices"),
    ({"contributors": ["a"], "labels": [0], "trusted_pred": [0], "flags": [True, False]}, DataError, "flags"),
    ({"contributors": ["a"], "labels": [0], "trusted_pred": [0], "weights": [-1.0]}, DataError, "weights"),
])
def test_bad_evidence_is_refused_in_one_line(kwargs, exc, text):
    with pytest.raises(exc, match=text) as info:
        ReputationBook(n_classes=2).update(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_parameters_and_time_travel_are_refused():
    with pytest.raises(InvalidParameterError, match="n_classes"):
        ReputationBook(n_classes=1)
    with pytest.raises(InvalidParameterError, match="credibility"):
        ReputationBook(n_classes=2, credibility=1.0)
    book = ReputationBook(n_classes=2)
    book.update(["a"], [0], [0], round=2)
    with pytest.raises(InvalidParameterError, match="round must not go back"):
        book.update(["a"], [0], [0], round=1)
    with pytest.raises(InvalidParameterError, match="min_size"):
        book.sybil_groups(min_size=1)
