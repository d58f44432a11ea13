"""Tabular triggers: raw values set through the encoder, and bad input."""

import numpy as np
import pytest

from poisonlab.attacks.data import TabularTrigger
from poisonlab.data import TabularEncoder
from poisonlab.exceptions import InvalidParameterError


def _table():
    rows = np.array([["25", "a", "x"], ["40", "b", "y"], ["33", "a", "x"], ["58", "c", "y"]] * 10, dtype=object)
    enc = TabularEncoder(columns=("age", "job", "city"), numeric={"age"}).fit(rows)
    return enc.transform(rows), np.arange(40) % 2, enc


def test_tabular_trigger_sets_raw_values_through_the_encoder():
    X, y, enc = _table()
    atk = TabularTrigger(trigger={"age": 58, "job": "c"}, encoder=enc, target=1, n_poison=4, random_state=0)
    res = atk.poison(X, y)
    names = enc.feature_names_
    T = atk.apply_trigger(X[:3])
    assert np.allclose(T[:, names.index("age")], (58 - enc.means_["age"]) / enc.stds_["age"], atol=1e-5)
    assert (T[:, names.index("job=c")] == 1).all() and (T[:, names.index("job=a")] == 0).all()
    assert (res.y[res.indices] == 1).all()
    # columns outside the trigger are untouched
    assert np.array_equal(T[:, names.index("city=x")], X[:3, names.index("city=x")])


def test_tabular_trigger_bad_input():
    X, y, enc = _table()
    with pytest.raises(InvalidParameterError, match="outside the column's domain"):
        TabularTrigger(trigger={"age": 120}, encoder=enc, n_poison=2).poison(X, y)
    with pytest.raises(InvalidParameterError, match="not a category of 'job'"):
        TabularTrigger(trigger={"job": "pilot"}, encoder=enc, n_poison=2).poison(X, y)
    with pytest.raises(InvalidParameterError, match="not a column"):
        TabularTrigger(trigger={"salary": 1}, encoder=enc, n_poison=2).poison(X, y)
    with pytest.raises(InvalidParameterError, match="out of range"):
        TabularTrigger(trigger={99: 0.0}, n_poison=2).poison(X, y)
    with pytest.raises(InvalidParameterError, match="at least one column"):
        TabularTrigger(trigger={}, n_poison=2).poison(X, y)
