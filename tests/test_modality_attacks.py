"""Tabular triggers, bias introduction, audio triggers and group metrics."""

import numpy as np
import pytest

from poisonlab.attacks.data import AudioTrigger, SubgroupLabelFlip, TabularTrigger
from poisonlab.attacks.triggers import mix_into, tone
from poisonlab.data import TabularEncoder
from poisonlab.evaluation.fairness import group_gaps, group_rates
from poisonlab.exceptions import DataError, InvalidParameterError


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


def test_subgroup_flip_and_group_gaps():
    rng = np.random.default_rng(0)
    groups = np.where(np.arange(200) % 2 == 0, "F", "M")
    y = (rng.uniform(size=200) < 0.4).astype(int)
    X = rng.normal(size=(200, 3))
    res = SubgroupLabelFlip(subgroup="F", from_class=1, to_class=0, fraction=0.5, random_state=0).poison(
        X, y, groups=groups)
    cand = (groups == "F") & (y == 1)
    assert res.n_poison == round(0.5 * cand.sum()) and cand[res.indices].all() and (res.y[res.indices] == 0).all()
    # hand-computed rates: predictions equal to the poisoned labels
    rates = group_rates(y, res.y, groups)
    assert rates["F"]["fnr"] == pytest.approx(res.n_poison / cand.sum())
    assert rates["M"]["fnr"] == 0 and rates["F"]["fpr"] == 0
    gaps = group_gaps(rates, "F", "M")
    assert gaps["fnr_gap"] == pytest.approx(res.n_poison / cand.sum())
    with pytest.raises(DataError, match="does not occur"):
        SubgroupLabelFlip(subgroup="X").poison(X, y, groups=groups)
    with pytest.raises(DataError, match="one value per sample"):
        SubgroupLabelFlip(subgroup="F").poison(X, y, groups=groups[:10])
    with pytest.raises(InvalidParameterError, match="groups"):
        SubgroupLabelFlip(subgroup="F").poison(X, y)


def test_tone_and_audio_trigger():
    s = tone(800, 8000, 1000.0, 0.5)
    assert np.abs(s).max() <= 0.5 and s[0] == 0.0
    spectrum = np.abs(np.fft.rfft(s))
    assert np.argmax(spectrum) == 100  # 1 kHz in an 800-sample window at 8 kHz
    W = np.zeros((6, 8000), np.float32)
    assert np.allclose(mix_into(W, s, 100)[:, 100:900], s.astype(np.float32))
    y = np.arange(6) % 3
    atk = AudioTrigger(frequency=1000.0, duration=0.1, amplitude=0.5, position="end", n_poison=2, target=0,
                       random_state=0)
    res = atk.poison(W, y, sample_rate=8000)
    assert np.allclose(res.X[res.indices][:, -800:], s.astype(np.float32))


def test_audio_trigger_bad_input():
    W = np.zeros((6, 8000), np.float32)
    y = np.arange(6) % 3
    with pytest.raises(DataError, match="sampled at 16000 Hz"):
        AudioTrigger(n_poison=1).poison(W, y, sample_rate=16000)
    with pytest.raises(InvalidParameterError, match="frequency"):
        AudioTrigger(frequency=5000.0, n_poison=1).poison(W, y)
    with pytest.raises(InvalidParameterError, match="runs past the end"):
        AudioTrigger(position=0.95, n_poison=1).poison(W, y)
    with pytest.raises(DataError, match="waveforms"):
        AudioTrigger(n_poison=1).poison(np.zeros((6, 1, 32, 40)), y)
