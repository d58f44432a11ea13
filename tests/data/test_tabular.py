"""Tabular loaders: real Adult and German Credit, user CSVs and the encoder."""

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.data import load_adult, load_german_credit, read_csv


def test_tabular_real(data_dir):
    a = load_adult(data_dir)
    assert len(a.train) == 32561 and len(a.test) == 16281
    assert a.train.X.shape[1] == a.test.X.shape[1] == len(a.encoder.feature_names_)
    assert np.isfinite(a.train.X).all() and "sex=Female" in a.train.feature_names
    assert a.encoder.unknown_counts_ == {}  # every test category was seen in training
    assert "native-country=Holand-Netherlands" in a.train.feature_names  # one row, in train only
    g = load_german_credit(data_dir)
    assert len(g.train) + len(g.test) == 1000
    assert (g.train.class_counts() + g.test.class_counts()).tolist() == [700, 300]


def test_csv_and_encoder(tmp_path):
    f = tmp_path / "fraud.csv"
    rows = ["amount,country,label"] + [f"{i * 10},{'FR' if i % 2 else 'DE'},{'fraud' if i % 5 == 0 else 'ok'}"
                                       for i in range(40)]
    f.write_text("\n".join(rows))
    s = read_csv(f, label_column="label")
    assert s.train.classes == ("fraud", "ok") and s.train.X.shape[1] == 3
    assert s.encoder.transform(np.array([["5", "US"]], dtype=object)).tolist()[0][1:] == [0.0, 0.0]
    f.write_text("amount,label\n1,a\n2\n")
    with pytest.raises(DataError, match="row 3 has 1 fields"):
        read_csv(f, label_column="label")
    with pytest.raises(DataError, match="label column 'y'"):
        read_csv(tmp_path / "fraud.csv", label_column="y")
