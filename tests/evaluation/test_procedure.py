"""The comparison for training-procedure tampering: targeted error against a hand value."""

import numpy as np
import pytest

from poisonlab.evaluation.procedure import targeted_error


def test_targeted_error_hand_value():
    assert targeted_error(np.array([3, 3, 3, 1]), np.array([8, 3, 8, 8]), 3, 8) == pytest.approx(2 / 3)
