"""IPM: -epsilon times the honest mean, the honest updates required."""

import numpy as np
import pytest

from poisonlab.attacks.federated import IPM
from poisonlab.exceptions import DataError, InvalidParameterError

HONEST = np.array([[1.0, 2.0, 0.0], [3.0, 6.0, -3.0]])  # mean (2, 4, -1.5)


def test_every_malicious_client_sends_minus_epsilon_times_the_honest_mean():
    own = np.array([[50.0, -50.0, 9.0], [7.0, 7.0, 7.0]])  # never averaged in
    assert np.allclose(IPM().craft(own, honest_updates=HONEST), [[-0.2, -0.4, 0.15]] * 2)  # epsilon 0.1
    assert np.allclose(IPM(epsilon=2).craft(own, honest_updates=HONEST), [[-4.0, -8.0, 3.0]] * 2)


def test_the_inner_product_with_the_honest_mean_is_negative():
    out = IPM(epsilon=0.5).craft(np.zeros((1, 3)), honest_updates=HONEST)
    assert float(out[0] @ HONEST.mean(axis=0)) < 0


def test_missing_honest_updates_is_a_one_line_data_error_naming_the_attack():
    assert IPM.knowledge == "honest"
    with pytest.raises(DataError, match="IPM needs the honest clients' updates") as info:
        IPM().craft(np.ones((1, 3)))
    assert "\n" not in str(info.value)
    with pytest.raises(DataError):
        IPM().craft(np.ones((1, 3)), honest_updates=np.ones((0, 3)))


def test_inputs_are_not_modified_and_shapes_must_agree():
    own, honest = np.ones((2, 3)), HONEST.copy()
    IPM().craft(own, honest_updates=honest)
    assert np.array_equal(own, np.ones((2, 3))) and np.array_equal(honest, HONEST)
    with pytest.raises(DataError, match="honest_updates has 3 parameters per client but own_updates has 2"):
        IPM().craft(np.ones((1, 2)), honest_updates=HONEST)


@pytest.mark.parametrize("epsilon", [0, -0.1, float("nan"), "0.1", True])
def test_bad_epsilon_is_named(epsilon):
    with pytest.raises(InvalidParameterError, match=r"IPM\.epsilon must be in \(0, inf\)"):
        IPM(epsilon=epsilon).craft(np.ones((1, 3)), honest_updates=HONEST)
