"""Sign flipping and Gaussian noise: hand-computed updates, seeds, inputs, bad input."""

import numpy as np
import pytest

from poisonlab.attacks.federated import GaussianNoise, SignFlip
from poisonlab.exceptions import DataError, InvalidParameterError


def test_sign_flip_sends_minus_scale_times_own():
    own = np.array([[1.0, -2.0, 0.5], [0.0, 4.0, -1.0]])
    assert SignFlip().craft(own).tolist() == [[-1.0, 2.0, -0.5], [-0.0, -4.0, 1.0]]
    assert SignFlip(scale=3).craft(own).tolist() == [[-3.0, 6.0, -1.5], [-0.0, -12.0, 3.0]]


def test_sign_flip_ignores_honest_updates_and_needs_none():
    own = np.array([[1.0, 2.0]])
    honest = np.array([[100.0, -100.0], [5.0, 5.0]])
    assert SignFlip.knowledge == "own"
    assert np.array_equal(SignFlip().craft(own, honest_updates=honest), SignFlip().craft(own))


def test_gaussian_same_seed_same_noise_other_seed_other_noise():
    own = np.zeros((3, 50))
    a = GaussianNoise(std=2.0, random_state=1).craft(own)
    b = GaussianNoise(std=2.0, random_state=1).craft(own)
    c = GaussianNoise(std=2.0, random_state=2).craft(own)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # independent draws per malicious client
    assert not np.array_equal(a[0], a[1])


def test_gaussian_noise_has_the_requested_spread_around_zero():
    out = GaussianNoise(std=3.0, random_state=0).craft(np.ones((200, 500)))
    # 100,000 draws: the sample mean is within 5 standard errors of 0, the std within 2%
    assert abs(out.mean()) < 5 * 3.0 / np.sqrt(out.size)
    assert out.std() == pytest.approx(3.0, rel=0.02)


def test_gaussian_own_mean_centres_the_same_noise_on_the_mean_of_own_updates():
    own = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, -1.0]])  # mean (2, 2, 1)
    zero = GaussianNoise(std=0.1, random_state=4).craft(own)
    centred = GaussianNoise(std=0.1, center="own_mean", random_state=4).craft(own)
    assert np.allclose(centred - zero, [[2.0, 2.0, 1.0], [2.0, 2.0, 1.0]])


def test_generator_random_state_is_used_and_advanced():
    rng = np.random.default_rng(9)
    atk = GaussianNoise(random_state=rng)
    first, second = atk.craft(np.zeros((1, 4))), atk.craft(np.zeros((1, 4)))
    assert not np.array_equal(first, second)  # the caller's stream advanced
    assert np.array_equal(first, GaussianNoise(random_state=np.random.default_rng(9)).craft(np.zeros((1, 4))))


@pytest.mark.parametrize("atk", [SignFlip(scale=2.0), GaussianNoise(center="own_mean", random_state=0)])
def test_inputs_are_not_modified_and_read_only_inputs_work(atk):
    own = np.arange(6.0).reshape(2, 3)
    honest = np.ones((4, 3))
    own0, honest0 = own.copy(), honest.copy()
    out = atk.craft(own, honest_updates=honest)
    assert np.array_equal(own, own0) and np.array_equal(honest, honest0)
    assert not np.shares_memory(out, own)
    own.flags.writeable = False
    atk.craft(own)


@pytest.mark.parametrize("cls", [SignFlip, GaussianNoise])
def test_shape_mismatch_and_malformed_updates_are_data_errors(cls):
    with pytest.raises(DataError, match="honest_updates has 2 parameters per client but own_updates has 3"):
        cls().craft(np.ones((1, 3)), honest_updates=np.ones((4, 2)))
    with pytest.raises(DataError, match="own_updates must have 2 dimensions"):
        cls().craft(np.ones(3))
    with pytest.raises(DataError, match="NaN or infinite"):
        cls().craft(np.array([[1.0, np.nan]]))


@pytest.mark.parametrize("cls, params, name", [
    (SignFlip, {"scale": 0}, "scale"), (SignFlip, {"scale": -1.0}, "scale"),
    (SignFlip, {"random_state": -1}, "random_state"),
    (GaussianNoise, {"std": 0.0}, "std"), (GaussianNoise, {"std": float("inf")}, "std"),
    (GaussianNoise, {"center": "own"}, "center"),
])
def test_bad_parameters_are_named(cls, params, name):
    with pytest.raises(InvalidParameterError, match=rf"{cls.__name__}\.{name} must be"):
        cls(**params).craft(np.ones((1, 2)))
