"""Min-max and min-sum: hand-computed gammas, the constraints hold and gamma is maximal, the
binary search, refusals."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from poisonlab.attacks.federated import MinMax, MinSum
from poisonlab.attacks.federated.min_max import perturbation, search_gamma
from poisonlab.exceptions import AssumptionError, DataError, InvalidParameterError, PoisonlabWarning

TAU = 1e-5

# benign along one axis: honest 0 and 1, own 5; mu = 2, unit_vec p = (-1, 0)
HONEST = np.array([[0.0, 0.0], [1.0, 0.0]])
OWN = np.array([[5.0, 0.0]])


def _benign(honest, own):
    return np.vstack([honest, own])


def _min_max_ok(benign, mal, slack=1e-9):
    """Eq. 4, by brute force: max distance to a benign update <= max pairwise benign distance."""
    bound = cdist(benign, benign, "sqeuclidean").max()
    return cdist(mal[None, :], benign, "sqeuclidean").max() <= bound * (1 + slack)


def _min_sum_ok(benign, mal, slack=1e-9):
    """Eq. 5, by brute force: sum of squared distances <= the largest such sum of a benign update."""
    bound = cdist(benign, benign, "sqeuclidean").sum(axis=1).max()
    return cdist(mal[None, :], benign, "sqeuclidean").sum() <= bound * (1 + slack)


def test_min_max_by_hand():
    # mal = 2 - gamma; farthest benign is 5: (3 + gamma)^2 <= max pairwise 5^2  ->  gamma = 2
    atk = MinMax(perturbation="unit_vec")
    out = atk.craft(OWN, honest_updates=HONEST)
    assert atk.gamma_ == pytest.approx(2.0, abs=2 * TAU) and atk.gamma_ <= 2.0
    assert np.allclose(out, [[0.0, 0.0]], atol=2 * TAU)


def test_min_sum_by_hand():
    # a = ||x - mu||^2 = (4, 1, 9), sum 14; sum_i ||mal - x_i||^2 = 14 + 3 gamma^2 <= 3 * 9 + 14
    # -> gamma = 3 (the largest benign sum is that of x = 5: 25 + 16 + 0 = 41)
    atk = MinSum(perturbation="unit_vec")
    out = atk.craft(OWN, honest_updates=HONEST)
    assert atk.gamma_ == pytest.approx(3.0, abs=2 * TAU) and atk.gamma_ <= 3.0
    assert np.allclose(out, [[-1.0, 0.0]], atol=2 * TAU)


@pytest.mark.parametrize("kind", ["std", "unit_vec", "sign"])
@pytest.mark.parametrize("cls, ok", [(MinMax, _min_max_ok), (MinSum, _min_sum_ok)])
def test_result_satisfies_the_constraint_and_gamma_is_maximal(cls, ok, kind):
    rng = np.random.default_rng(11)
    direction = rng.normal(size=30)
    honest = direction + rng.normal(0, 0.4, size=(12, 30))
    own = direction + rng.normal(0, 0.4, size=(3, 30))
    benign = _benign(honest, own)
    atk = cls(perturbation=kind)
    out = atk.craft(own, honest_updates=honest)
    mu, p = benign.mean(axis=0), perturbation(benign, kind)
    assert np.allclose(out, np.tile(mu + atk.gamma_ * p, (3, 1)))
    assert atk.gamma_ > 0 and ok(benign, out[0])
    # maximal within the search's tolerance: a little more breaks the constraint
    assert not ok(benign, mu + (atk.gamma_ + 3 * TAU) * p, slack=0)


def test_the_default_perturbation_is_minus_the_standard_deviation():
    rng = np.random.default_rng(5)
    honest, own = rng.normal(size=(9, 4)), rng.normal(size=(2, 4))
    benign = _benign(honest, own)
    for cls in (MinMax, MinSum):
        atk = cls()
        assert atk.perturbation == "std"
        out = atk.craft(own, honest_updates=honest)
        assert np.allclose(out[0], benign.mean(axis=0) - atk.gamma_ * benign.std(axis=0, ddof=1))


def test_perturbations_by_hand():
    benign = np.array([[1.0, -2.0], [3.0, 0.0]])  # mu = (2, -1), std (ddof=1) = (sqrt 2, sqrt 2)
    assert np.allclose(perturbation(benign, "unit_vec"), [-2 / np.sqrt(5), 1 / np.sqrt(5)])
    assert np.allclose(perturbation(benign, "std"), [-np.sqrt(2), -np.sqrt(2)])
    assert np.allclose(perturbation(benign, "sign"), [-1.0, 1.0])


def test_search_gamma_is_the_papers_halving_search():
    gamma, bounded = search_gamma(lambda g: g <= 3.3, 10.0, TAU)
    assert bounded and 3.3 - 2 * TAU <= gamma <= 3.3
    gamma, bounded = search_gamma(lambda g: True, 10.0, TAU)   # never fails: runs into 2 * 10
    assert not bounded and 20.0 - 2 * TAU <= gamma < 20.0
    assert search_gamma(lambda g: False, 10.0, TAU) == (0.0, True)
    # the first candidates: 10 (fails), 5 (fails), 2.5 (holds), 3.75 ...
    seen = []
    search_gamma(lambda g: seen.append(g) or g <= 3.3, 10.0, TAU)
    assert seen[:4] == [10.0, 5.0, 2.5, 3.75]


def test_a_search_that_hits_its_ceiling_warns():
    with pytest.warns(PoisonlabWarning, match="raise gamma_init"):
        atk = MinMax(perturbation="unit_vec", gamma_init=0.5)
        out = atk.craft(OWN, honest_updates=HONEST)
    assert atk.gamma_ == pytest.approx(1.0, abs=2 * TAU)  # the ceiling, still feasible
    assert _min_max_ok(_benign(HONEST, OWN), out[0])


@pytest.mark.parametrize("cls", [MinMax, MinSum])
def test_a_zero_perturbation_is_refused(cls):
    same = np.ones((3, 4))
    with pytest.raises(AssumptionError, match="'std' perturbation is zero"):
        cls().craft(same[:1], honest_updates=same)
    symmetric = np.array([[1.0, -1.0], [-1.0, 1.0]])  # with own (0, 0): mean zero
    with pytest.raises(AssumptionError, match="benign mean is zero"):
        cls(perturbation="unit_vec").craft(np.zeros((1, 2)), honest_updates=symmetric)


@pytest.mark.parametrize("cls", [MinMax, MinSum])
def test_missing_honest_updates_is_a_one_line_data_error_naming_the_attack(cls):
    assert cls.knowledge == "honest"
    with pytest.raises(DataError, match=f"{cls.__name__} needs the honest clients' updates") as info:
        cls().craft(OWN)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cls", [MinMax, MinSum])
def test_inputs_are_not_modified_and_shapes_must_agree(cls):
    honest, own = HONEST.copy(), OWN.copy()
    out = cls().craft(own, honest_updates=honest)
    assert np.array_equal(honest, HONEST) and np.array_equal(own, OWN)
    assert not np.shares_memory(out, own)
    with pytest.raises(DataError, match="honest_updates has 3 parameters per client but own_updates has 2"):
        cls().craft(own, honest_updates=np.ones((4, 3)))


@pytest.mark.parametrize("cls", [MinMax, MinSum])
@pytest.mark.parametrize("params, name", [({"perturbation": "unit"}, "perturbation"),
                                          ({"gamma_init": 0}, "gamma_init"), ({"tau": -1e-5}, "tau"),
                                          ({"tau": 20.0}, "tau"), ({"random_state": 1.5}, "random_state")])
def test_bad_parameters_are_named(cls, params, name):
    with pytest.raises(InvalidParameterError, match=rf"{cls.__name__}\.{name} must be"):
        cls(**params).craft(OWN, honest_updates=HONEST)
