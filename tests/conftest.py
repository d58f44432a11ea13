import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"


def pytest_configure(config):
    import torch

    # Tests run beside other work on 2 cores; one torch thread is faster there (PEERS.md).
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets: $POISONLAB_DATA_DIR, else ../shared/datasets beside the repo."""
    path = Path(os.environ.get("POISONLAB_DATA_DIR", SHARED))
    if not (path / "mnist").is_dir():
        pytest.skip(f"real datasets not found at {path} (set POISONLAB_DATA_DIR)")
    return path


@pytest.fixture
def images():
    """Small 4-class image set, (60, 1, 8, 8) float32 in [0, 1]."""
    rng = np.random.default_rng(123)
    X = rng.uniform(0, 0.5, size=(60, 1, 8, 8)).astype(np.float32)
    y = np.arange(60) % 4
    return X, y
