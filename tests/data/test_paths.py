"""Finding the data: a missing data directory or an unknown dataset is a clear error."""

import pytest

from poisonlab import DataError
from poisonlab.data import load_dataset, load_mnist


def test_missing_data_dir_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("POISONLAB_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="POISONLAB_DATA_DIR"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nope")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
