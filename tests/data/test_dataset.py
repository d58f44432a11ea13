"""The Dataset container: validation, class counts and subsets."""

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.data import Dataset


def test_dataset_container_validation():
    X = np.zeros((3, 2))
    with pytest.raises(DataError, match="label 2 but there are only 2 classes"):
        Dataset(X=X, y=[0, 1, 2], classes=("a", "b"), modality="tabular", ids=["a", "b", "c"])
    with pytest.raises(DataError, match="unique"):
        Dataset(X=X, y=[0, 1, 0], classes=("a", "b"), modality="tabular", ids=["a", "a", "c"])
    with pytest.raises(DataError, match="modality"):
        Dataset(X=X, y=[0, 1, 0], classes=("a", "b"), modality="video", ids=["a", "b", "c"])
    ds = Dataset(X=X, y=[0, 1, 0], classes=("a", "b", "c"), modality="tabular", ids=["a", "b", "c"],
                 metadata={"contributor": ["u1", "u2", "u1"]})
    assert ds.class_counts().tolist() == [2, 1, 0]  # an empty class is counted, not dropped
    sub = ds.subset([2, 0])
    assert sub.ids.tolist() == ["c", "a"] and sub.metadata["contributor"].tolist() == ["u1", "u1"]
