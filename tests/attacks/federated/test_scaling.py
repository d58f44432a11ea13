"""Model replacement and constrain-and-scale: the n / eta boost, replacement, the norm bound."""

import numpy as np
import pytest

from poisonlab.attacks.federated import ConstrainAndScale, ModelReplacement
from poisonlab.attacks.federated.scaling import project_l2
from poisonlab.exceptions import DataError, InvalidParameterError


def test_the_default_boost_is_n_over_eta():
    own = np.array([[0.1, -0.2, 0.3]])
    atk = ModelReplacement()
    assert np.allclose(atk.craft(own, n_clients=10), [[1.0, -2.0, 3.0]]) and atk.gamma_ == 10.0
    assert np.allclose(ModelReplacement(server_lr=0.5).craft(own, n_clients=10), [[2.0, -4.0, 6.0]])
    assert np.allclose(ModelReplacement(gamma=3).craft(own, n_clients=10), [[0.3, -0.6, 0.9]])
    # n_clients defaults to the malicious plus the honest clients of the round
    atk.craft(own, honest_updates=np.zeros((9, 3)))
    assert atk.gamma_ == 10.0


def test_fedavg_lands_on_the_attackers_model_when_honest_updates_cancel():
    rng = np.random.default_rng(0)
    G = rng.normal(size=5)                     # global model
    X = G + rng.normal(size=5)                 # the attacker's backdoored model
    h = rng.normal(size=(4, 5))
    honest = np.vstack([h, -h])                # 8 honest updates summing to zero
    eta = 0.5
    mal = ModelReplacement(server_lr=eta).craft((X - G)[None, :], honest_updates=honest)
    new_global = G + eta * np.vstack([honest, mal]).mean(axis=0)   # G + eta / n * sum
    assert np.allclose(new_global, X)


def test_constrain_and_scale_projects_onto_the_norm_bound():
    own = np.array([[0.6, 0.8], [0.03, 0.04]])  # norms 1 and 0.05
    atk = ConstrainAndScale(max_norm=2.0)
    out = atk.craft(own, n_clients=10)          # boosted to norms 10 and 0.5
    assert atk.gamma_ == 10.0
    assert np.allclose(out, [[1.2, 1.6], [0.3, 0.4]])
    assert np.allclose(np.linalg.norm(out, axis=1), [2.0, 0.5])
    # the bound holds for any input, direction kept
    rng = np.random.default_rng(3)
    big = rng.normal(0, 5, size=(6, 20))
    out = ConstrainAndScale(max_norm=1.5).craft(big, n_clients=6)
    assert (np.linalg.norm(out, axis=1) <= 1.5 + 1e-12).all()
    cos = (out * big).sum(axis=1) / np.linalg.norm(out, axis=1) / np.linalg.norm(big, axis=1)
    assert np.allclose(cos, 1.0)


def test_project_l2_keeps_zero_and_short_rows():
    U = np.array([[0.0, 0.0], [0.3, 0.4], [3.0, 4.0]])
    assert np.allclose(project_l2(U, 1.0), [[0.0, 0.0], [0.3, 0.4], [0.6, 0.8]])


@pytest.mark.parametrize("cls", [ModelReplacement, ConstrainAndScale])
def test_own_knowledge_inputs_untouched_and_shapes_checked(cls):
    assert cls.knowledge == "own"
    own, honest = np.ones((2, 3)), np.full((5, 3), 2.0)
    out = cls().craft(own, honest_updates=honest)
    assert np.array_equal(own, np.ones((2, 3))) and np.array_equal(honest, np.full((5, 3), 2.0))
    assert not np.shares_memory(out, own)
    assert np.array_equal(cls().craft(own, n_clients=7), out)  # the honest updates are not read
    with pytest.raises(DataError, match="honest_updates has 2 parameters per client but own_updates has 3"):
        cls().craft(own, honest_updates=np.ones((5, 2)))
    with pytest.raises(InvalidParameterError, match="n_clients must be at least the 2 malicious"):
        cls().craft(own, n_clients=1)


@pytest.mark.parametrize("cls, params, name", [
    (ModelReplacement, {"gamma": 0}, "gamma"), (ModelReplacement, {"gamma": -2.0}, "gamma"),
    (ModelReplacement, {"server_lr": 0.0}, "server_lr"),
    (ConstrainAndScale, {"max_norm": 0}, "max_norm"), (ConstrainAndScale, {"max_norm": "1"}, "max_norm"),
    (ConstrainAndScale, {"gamma": float("inf")}, "gamma"), (ConstrainAndScale, {"server_lr": -1}, "server_lr"),
])
def test_bad_parameters_are_named(cls, params, name):
    with pytest.raises(InvalidParameterError, match=rf"{cls.__name__}\.{name} must be"):
        cls(**params).craft(np.ones((1, 3)), n_clients=4)
