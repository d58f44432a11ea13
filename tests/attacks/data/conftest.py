"""Fixtures shared by the data-attack tests."""

import numpy as np
import pytest

from poisonlab.data import load_mnist


@pytest.fixture(scope="session")
def mnist_small(data_dir):
    s = load_mnist(data_dir)
    return s.train.subset(np.arange(12_000)), s.test.subset(np.arange(2_000))
