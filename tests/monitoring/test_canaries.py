"""Canary suites (poisonlab.monitoring.canaries): building, files, probes on planted backdoors."""

import json

import numpy as np
import pytest

from poisonlab.data import Dataset
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.monitoring.canaries import (build_canary_suite, load_canary_suite, probe_rates, run_canaries,
                                           save_canary_suite, select_canaries, trigger_families)

from ._digits_models import TARGET, classifier, digits


@pytest.fixture(scope="module")
def suite():
    return build_canary_suite(digits().test, n_per_class=10, seed=0)


def test_trigger_families_are_the_registered_backdoors_of_the_modality():
    assert trigger_families("image") == ["badnets", "blended", "label_consistent", "sig", "wanet"]
    assert set(trigger_families("text")) == {"addsent", "badchar", "badword", "clean_label_badword"}
    assert trigger_families("tabular") == ["blended", "tabular_trigger"]
    with pytest.raises(InvalidParameterError, match="modality must be one of"):
        trigger_families("video")


def test_canaries_are_n_per_class_drawn_by_seed(suite):
    assert len(suite) == 100 and np.bincount(suite.y).tolist() == [10] * 10
    again = build_canary_suite(digits().test, n_per_class=10, seed=0)
    other = build_canary_suite(digits().test, n_per_class=10, seed=1)
    assert np.array_equal(again.ids, suite.ids) and not np.array_equal(other.ids, suite.ids)
    assert all(np.array_equal(a.X, b.X) for a, b in zip(again.probes, suite.probes))
    # a class with fewer samples gives all of them
    idx = select_canaries(np.array([0, 0, 0, 1]), 2, np.random.default_rng(0))
    assert sorted(np.array([0, 0, 0, 1])[idx].tolist()) == [0, 0, 1]


def test_probes_stamp_each_family_on_every_canary(suite):
    assert [p.family for p in suite.probes] == trigger_families("image") and suite.skipped == {}
    badnets = next(p for p in suite.probes if p.family == "badnets")
    diff = np.abs(badnets.X - suite.X).reshape(len(suite), 8, 8)
    assert diff[:, :5, :].max() == 0 and diff[:, :, :5].max() == 0  # only the bottom-right 3x3 patch
    assert np.all(badnets.X[:, 0, 5:, 5:] == 1.0)


def test_probe_rates_by_hand():
    # targets 0, 1, 2; inputs of classes 0, 1, 2, 2 triggered -> predicted 2, 2, 2, 0
    rates = probe_rates(np.array([2, 2, 2, 0]), np.array([0, 1, 2, 2]), 3)
    assert rates.tolist() == pytest.approx([1 / 3, 0.0, 1.0])  # class 2: both non-2 inputs went there
    assert np.isnan(probe_rates(np.array([0, 0]), np.array([0, 0]), 2)[0])


def test_a_planted_badnets_probe_fires_on_the_backdoored_model_only(suite):
    bad = run_canaries(classifier("badnets"), suite)
    clean = run_canaries(classifier("clean"), suite)
    fired = {p.family: p for p in bad.fired}
    assert "badnets" in fired and fired["badnets"].target == TARGET and fired["badnets"].rate >= 0.9
    assert not bad.passed and "badnets -> class 3" in bad.message()
    assert clean.passed and clean.fired == [] and clean.accuracy >= 0.9
    assert max(p.rate for p in clean.probes) < 0.5
    assert bad.accuracy >= 0.9  # the backdoor keeps the clean accuracy: only the probe sees it
    d = bad.to_dict()
    assert len(d["correct"]) == len(suite) and d["correct"] == bad.correct.tolist()
    json.dumps(d)


def test_thresholds_are_applied_as_stated(suite):
    clean = classifier("clean")
    res = run_canaries(clean, suite, min_accuracy=1.0)
    assert res.passed is (res.accuracy >= 1.0)
    res = run_canaries(clean, suite, fire_rate=0.01)  # any probe moving 1% of the others fires
    assert [p.fires for p in res.probes] == [p.rate >= 0.01 for p in res.probes]
    with pytest.raises(InvalidParameterError, match="fire_rate must be in"):
        run_canaries(clean, suite, fire_rate=0)


def test_labels_only_models_and_functions_work(suite):
    res = run_canaries(lambda X: np.full(len(X), 3), suite)
    assert res.probabilities is None and res.accuracy == pytest.approx(0.1)
    assert all(p.fires and p.target == 3 for p in res.probes)


def test_save_and_load_round_trip_without_pickle(tmp_path, suite):
    save_canary_suite(tmp_path / "s", suite)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["canaries.json", "canaries.npz"]
    back = load_canary_suite(tmp_path / "s")
    assert np.array_equal(back.X, suite.X) and np.array_equal(back.y, suite.y) and back.classes == suite.classes
    assert [p.family for p in back.probes] == [p.family for p in suite.probes]
    assert all(np.array_equal(a.X, b.X) for a, b in zip(back.probes, suite.probes))
    with np.load(tmp_path / "s" / "canaries.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    with pytest.raises(DataError, match="holds no canary suite"):
        load_canary_suite(tmp_path)
    (tmp_path / "s" / "canaries.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_canary_suite(tmp_path / "s")


def test_text_suites_store_texts_as_unicode(tmp_path):
    texts = np.array([f"message number {i} about {w}" for i, w in enumerate(["cats", "dogs"] * 20)], dtype=object)
    ds = Dataset(X=texts, y=np.arange(40) % 2, classes=("ham", "spam"), modality="text",
                 ids=np.array([f"t{i}" for i in range(40)]))
    suite = build_canary_suite(ds, n_per_class=5, families=["badword", "addsent"])
    word = suite.probes[0]
    assert all(set(t.split()) & {"cf", "mn", "bb", "tq"} for t in word.X)
    save_canary_suite(tmp_path, suite)
    back = load_canary_suite(tmp_path)
    assert back.X.dtype == object and list(back.probes[1].X) == list(suite.probes[1].X)


def test_bad_arguments_are_one_line_errors():
    ds = digits().test
    with pytest.raises(InvalidParameterError, match="n_per_class must be an integer >= 1"):
        build_canary_suite(ds, n_per_class=0)
    with pytest.raises(InvalidParameterError, match=r"families \['addsent'\] are not trigger families of image"):
        build_canary_suite(ds, families=["addsent"])


def test_probe_params_change_a_familys_trigger():
    ds = digits().test
    big = build_canary_suite(ds, n_per_class=2, families=["badnets"], probe_params={"badnets": {"patch_size": 5}})
    probe = big.probes[0]
    assert probe.params["patch_size"] == 5 and np.all(probe.X[:, 0, 3:, 3:] == 1.0)
    with pytest.raises(InvalidParameterError, match=r"probe_params names \['addsent'\], which are not probed"):
        build_canary_suite(ds, probe_params={"addsent": {}})
    with pytest.raises(InvalidParameterError, match="trigger family 'badnets' cannot probe this data"):
        build_canary_suite(ds, probe_params={"badnets": {"patch_size": 0}})
