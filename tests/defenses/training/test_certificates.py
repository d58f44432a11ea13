"""The certificates against hand-computed values and against brute force: enumerate every set of
r changed base models (each free to vote anything / rank the classes in any order) and check that
the prediction cannot change for r <= radius (soundness) and can for r = radius + 1 (DPA:
exactness)."""

import itertools

import numpy as np
import pytest

from poisonlab.defenses.training.certificates import (
    Certificate,
    certified_accuracy,
    dpa_radius,
    median_certified_radius,
    plurality_vote,
    roe_radius,
    run_off_vote,
)
from poisonlab.exceptions import DataError, InvalidParameterError


def _counts_of(votes, C):
    return np.bincount(votes, minlength=C)[None, :]


def _stats_of(rankings, C):
    """counts and pairwise from per-model rankings (tuples, best class first)."""
    counts = np.zeros((1, C), np.int64)
    pairwise = np.zeros((1, C, C), np.int64)
    for rk in rankings:
        counts[0, rk[0]] += 1
        pos = {c: i for i, c in enumerate(rk)}
        for a in range(C):
            for b in range(C):
                if a != b and pos[a] < pos[b]:
                    pairwise[0, a, b] += 1
    return counts, pairwise


# --- hand-computed values -------------------------------------------------------------------

def test_dpa_radius_hand_computed():
    counts = np.array([[5, 2, 0],     # (5 - 2) // 2 = 1
                       [3, 3, 0],     # tie -> class 0; rival 1 gets no tie bonus (1 > 0): 0
                       [0, 4, 4],     # tie -> class 1; (4 - 4) // 2 = 0
                       [1, 6, 1],     # rival class 0 gets +1 (0 < 1): (6 - 2) // 2 = 2
                       [10, 0, 0]])   # 10 // 2 = 5
    pred, radius = dpa_radius(counts)
    assert pred.tolist() == [0, 0, 1, 1, 0]
    assert radius.tolist() == [1, 0, 0, 2, 5]
    assert plurality_vote(counts).tolist() == pred.tolist()


def test_run_off_can_disagree_with_the_plurality():
    # 3 models vote 0 (ranking 0 > 2 > 1), 2 vote 1 (1 > 2 > 0), 2 vote 2 (2 > 1 > 0):
    # round one keeps 0 (3) and 1 (2, ties to the smaller label); head to head 1 beats 0 by 4 to 3
    rankings = [(0, 2, 1)] * 3 + [(1, 2, 0)] * 2 + [(2, 1, 0)] * 2
    counts, pairwise = _stats_of(rankings, 3)
    assert plurality_vote(counts).tolist() == [0]
    assert run_off_vote(counts, pairwise).tolist() == [1]


def test_certified_accuracy_and_median_hand_computed():
    pred = np.array([0, 1, 1, 2])
    radius = np.array([3, 0, 5, 2])
    y = np.array([0, 1, 0, 2])           # third one is wrong
    assert certified_accuracy(pred, radius, y, [0, 1, 2, 3, 4]).tolist() == [0.75, 0.5, 0.5, 0.25, 0.0]
    assert median_certified_radius(pred, radius, y) == 2   # certified acc at 2 is 0.5, at 3 it is 0.25
    assert median_certified_radius(pred, radius, np.array([1, 0, 0, 0])) == -1


# --- brute force ------------------------------------------------------------------------------

def _dpa_can_flip(votes, C, r):
    pred = plurality_vote(_counts_of(votes, C))[0]
    for S in itertools.combinations(range(len(votes)), r):
        for new in itertools.product(range(C), repeat=r):
            v = votes.copy()
            v[list(S)] = new
            if plurality_vote(_counts_of(v, C))[0] != pred:
                return True
    return False


@pytest.mark.parametrize("case", range(60))
def test_dpa_radius_is_exact_against_brute_force(case):
    rng = np.random.default_rng(case)
    k, C = int(rng.integers(2, 8)), int(rng.integers(2, 4))
    votes = rng.choice(C, size=k, p=rng.dirichlet(np.ones(C) * 0.7))
    _, radius = dpa_radius(_counts_of(votes, C))
    r = int(radius[0])
    assert not _dpa_can_flip(votes, C, r), f"{r} changed models flipped a DPA prediction certified at {r}"
    if r + 1 <= k:
        assert _dpa_can_flip(votes, C, r + 1), f"DPA radius {r} is not tight: {r + 1} changes cannot flip it"


def _roe_can_flip(rankings, C, r):
    counts, pairwise = _stats_of(rankings, C)
    pred = run_off_vote(counts, pairwise)[0]
    orders = list(itertools.permutations(range(C)))
    for S in itertools.combinations(range(len(rankings)), r):
        for new in itertools.product(orders, repeat=r):
            rk = list(rankings)
            for i, o in zip(S, new):
                rk[i] = o
            c2, p2 = _stats_of(rk, C)
            if run_off_vote(c2, p2)[0] != pred:
                return True
    return False


ROE_CASES = 60


@pytest.fixture(scope="module")
def roe_tightness():
    return {"tight": 0, "checked": 0}


@pytest.mark.parametrize("case", range(ROE_CASES))
def test_roe_radius_is_sound_against_brute_force(case, roe_tightness):
    rng = np.random.default_rng(1000 + case)
    k, C = int(rng.integers(3, 8)), 3
    orders = list(itertools.permutations(range(C)))
    weights = rng.dirichlet(np.ones(len(orders)) * 0.6)
    rankings = [orders[i] for i in rng.choice(len(orders), size=k, p=weights)]
    counts, pairwise = _stats_of(rankings, C)
    pred, radius = roe_radius(counts, pairwise)
    assert pred[0] == run_off_vote(counts, pairwise)[0]
    r = int(radius[0])
    assert r >= 0
    if r <= 3:  # enumeration stays small
        assert not _roe_can_flip(rankings, C, r), f"{r} changed models flipped an ROE prediction certified at {r}"
    if r + 1 <= min(k, 3):
        roe_tightness["checked"] += 1
        roe_tightness["tight"] += _roe_can_flip(rankings, C, r + 1)


def test_roe_radius_is_usually_tight(roe_tightness):
    # run after the soundness cases: most certificates are exact on these small elections
    if roe_tightness["checked"] < 20:
        pytest.skip("needs the brute-force cases of this module")
    assert roe_tightness["tight"] / roe_tightness["checked"] >= 0.8, roe_tightness


def test_roe_certifies_at_least_dpa_on_unanimous_votes():
    counts, pairwise = _stats_of([(2, 0, 1)] * 9, 3)
    assert roe_radius(counts, pairwise)[1][0] == dpa_radius(counts)[1][0] == 4


# --- bad input -------------------------------------------------------------------------------

def test_bad_vote_arrays_are_refused():
    with pytest.raises(DataError, match="counts must be"):
        dpa_radius(np.array([1, 2]))
    with pytest.raises(DataError, match="counts must be"):
        dpa_radius(np.array([[1.0, 2.0]]))
    with pytest.raises(DataError, match="pairwise must be"):
        roe_radius(np.array([[1, 2]]), np.zeros((1, 3, 3), int))


def test_certificate_refuses_the_other_threat():
    ins = Certificate(prediction=np.array([0]), radius=np.array([4]), threat="insertion_removal", method="dpa",
                      n_models=9)
    flip = Certificate(prediction=np.array([0]), radius=np.array([4]), threat="label_flip", method="dpa",
                       n_models=9)
    assert ins.radius_for("insertion_removal").tolist() == [4]
    with pytest.raises(InvalidParameterError, match="label_flip.*insertion_removal certificate.*SSDPA"):
        ins.radius_for("label_flip")
    with pytest.raises(InvalidParameterError, match="insertion_removal.*label_flip certificate"):
        flip.certified_accuracy(np.array([0]), [0, 1], threat="insertion_removal")
    with pytest.raises(InvalidParameterError, match="threat must be one of"):
        Certificate(prediction=np.array([0]), radius=np.array([0]), threat="flips", method="dpa", n_models=2)
