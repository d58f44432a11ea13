"""ALIE: the paper's z_max, mu - z sigma over the benign updates, refusals."""

import numpy as np
import pytest
from scipy.stats import norm

from poisonlab.attacks.federated import ALIE
from poisonlab.attacks.federated.alie import alie_supporters, alie_z_max
from poisonlab.exceptions import AssumptionError, DataError, InvalidParameterError


def test_z_max_for_20_clients_4_malicious_by_hand():
    # s = floor(20/2 + 1) - 4 = 7 supporters; z_max = Phi^-1((20 - 7) / 20) = Phi^-1(0.65)
    assert alie_supporters(20, 4) == 7
    assert alie_z_max(20, 4) == pytest.approx(norm.ppf(0.65))
    assert alie_z_max(20, 4) == pytest.approx(0.385320, abs=1e-6)
    # n = 50, f = 12 (the paper's CIFAR-10 setting): s = 26 - 12 = 14, Phi^-1(36 / 50)
    assert alie_z_max(50, 12) == pytest.approx(norm.ppf(0.72))
    # odd n: n = 21, f = 5: s = floor(11.5) - 5 = 6, Phi^-1(15 / 21)
    assert alie_z_max(21, 5) == pytest.approx(norm.ppf(15 / 21))


def test_tiny_example_by_hand():
    # benign coordinates (2, 2, 2, -2) and (0, 0, 0, 4): mu = (1, 1), sigma (ddof=1) = (2, 2)
    honest = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0]])
    own = np.array([[-2.0, 4.0]])
    assert ALIE(z=1.5).craft(own, honest_updates=honest).tolist() == [[-2.0, -2.0]]
    assert ALIE(z=1.5, direction="plus").craft(own, honest_updates=honest).tolist() == [[4.0, 4.0]]


def test_twenty_clients_four_malicious_send_mu_minus_z_max_sigma():
    rng = np.random.default_rng(0)
    honest, own = rng.normal(1.0, 2.0, (16, 6)), rng.normal(1.0, 2.0, (4, 6))
    atk = ALIE()
    out = atk.craft(own, honest_updates=honest)
    benign = np.vstack([honest, own])
    expected = benign.mean(axis=0) - norm.ppf(0.65) * benign.std(axis=0, ddof=1)
    assert atk.z_ == pytest.approx(norm.ppf(0.65))
    assert out.shape == (4, 6)
    assert np.allclose(out, expected[None, :], rtol=0, atol=1e-12)  # every malicious client the same


def test_n_clients_sets_z_max():
    rng = np.random.default_rng(1)
    honest, own = rng.normal(size=(16, 3)), rng.normal(size=(4, 3))
    atk = ALIE()
    atk.craft(own, honest_updates=honest, n_clients=40)  # s = 21 - 4 = 17: Phi^-1(23 / 40)
    assert atk.z_ == pytest.approx(norm.ppf(23 / 40))


def test_a_malicious_majority_is_refused_unless_z_is_given():
    honest, own = np.ones((2, 3)), np.zeros((3, 3))
    with pytest.raises(AssumptionError, match="not to be a majority"):
        ALIE().craft(own, honest_updates=honest)  # n = 5, f = 3: s = 3 - 3 = 0
    assert ALIE(z=1.0).craft(own, honest_updates=honest).shape == (3, 3)


def test_missing_honest_updates_is_a_one_line_data_error_naming_the_attack():
    assert ALIE.knowledge == "honest"
    with pytest.raises(DataError, match="ALIE needs the honest clients' updates") as info:
        ALIE().craft(np.ones((2, 3)))
    assert "\n" not in str(info.value)


def test_inputs_are_not_modified_and_shapes_must_agree():
    rng = np.random.default_rng(2)
    honest, own = rng.normal(size=(8, 3)), rng.normal(size=(2, 3))
    h0, o0 = honest.copy(), own.copy()
    ALIE().craft(own, honest_updates=honest)
    assert np.array_equal(honest, h0) and np.array_equal(own, o0)
    with pytest.raises(DataError, match="honest_updates has 2 parameters per client but own_updates has 3"):
        ALIE().craft(own, honest_updates=honest[:, :2])


@pytest.mark.parametrize("params, name", [({"z": -0.5}, "z"), ({"z": float("nan")}, "z"), ({"z": "1"}, "z"),
                                          ({"direction": "down"}, "direction"),
                                          ({"random_state": "seed"}, "random_state")])
def test_bad_parameters_are_named(params, name):
    with pytest.raises(InvalidParameterError, match=rf"ALIE\.{name} must be"):
        ALIE(**params).craft(np.ones((1, 3)), honest_updates=np.zeros((4, 3)))
