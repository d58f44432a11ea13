"""The built-in digits set: no files needed."""

import numpy as np

from poisonlab.data import load_dataset, load_digits


def test_digits_needs_no_files(monkeypatch):
    monkeypatch.delenv("POISONLAB_DATA_DIR", raising=False)
    s = load_dataset("digits")
    assert s.train.X.shape[1:] == (1, 8, 8) and len(s.train) + len(s.test) == 1797
    assert s.train.X.max() <= 1.0 and s.train.modality == "image"
    assert np.array_equal(load_digits().train.ids, s.train.ids)
