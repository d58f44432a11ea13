"""The data scan workflow (poisonlab.runs.scan): ranking, events, retraining without the quarantine."""

import numpy as np
import pytest

from poisonlab import InvalidParameterError
from poisonlab.attacks.data import BadNets
from poisonlab.data import load_digits
from poisonlab.models import TrainConfig
from poisonlab.runs.events import DetectorFinished, EpochEnded, StepFinished, StepStarted
from poisonlab.runs.scan import DEFAULT_DETECTORS, retrain_without_quarantine, scan


@pytest.fixture(scope="module")
def poisoned_digits():
    s = load_digits()
    res = BadNets(target=0, poison_rate=0.05, value=1.0, random_state=0).poison(s.train.X, s.train.y)
    return s, s.train.with_arrays(X=res.X, y=res.y), res.poison_mask


def test_scan_on_given_features_ranks_planted_poison(poisoned_digits):
    _, ds, mask = poisoned_digits
    # raw pixels as features: the patch itself makes the poisons outliers of class 0
    F = ds.X.reshape(len(ds), -1)
    r = scan(ds, features=F, detectors=("spectre", "robust_outliers", "duplicates"), contamination=0.06,
             poison_mask=mask)
    assert r.evaluation["robust_outliers"]["auroc"] >= 0.95
    assert r.quarantine.sum() == int(np.ceil(0.06 * len(ds)))
    top = r.table(5)
    assert top[0]["rank"] == 1 and top[0]["score"] >= top[-1]["score"] and top[0]["why"]
    again = scan(ds, features=F, detectors=("spectre", "robust_outliers", "duplicates"), contamination=0.06)
    assert np.array_equal(again.combined, r.combined), "same input, same ranking"
    summary = r.to_dict(top=3)
    assert summary["detectors"] == ["spectre", "robust_outliers", "duplicates"]
    assert summary["n_quarantined"] == int(r.quarantine.sum()) and len(summary["top"]) == 3


def test_scan_emits_one_event_per_detector_and_brackets_the_step(poisoned_digits):
    _, ds, _ = poisoned_digits
    seen = []
    r = scan(ds, features=ds.X.reshape(len(ds), -1), detectors=("robust_outliers", "duplicates"), emit=seen.append)
    assert isinstance(seen[0], StepStarted) and seen[0].step == "scan"
    assert isinstance(seen[-1], StepFinished) and seen[-1].summary["n_quarantined"] == int(r.quarantine.sum())
    done = [e for e in seen if isinstance(e, DetectorFinished)]
    assert [e.name for e in done] == ["robust_outliers", "duplicates"]
    assert [e.n_flagged for e in done] == [int(r.flags["robust_outliers"].sum()), int(r.flags["duplicates"].sum())]


def test_detectors_take_parameters_and_a_random_state(poisoned_digits):
    _, ds, _ = poisoned_digits
    F = ds.X.reshape(len(ds), -1)
    by_name = scan(ds, features=F, detectors=("robust_outliers",), contamination=0.05)
    pairs = scan(ds, features=F, detectors=[("robust_outliers", {"contamination": 0.2})], contamination=0.05,
                 random_state=0)
    assert pairs.flags["robust_outliers"].sum() > by_name.flags["robust_outliers"].sum()
    with pytest.raises(InvalidParameterError, match="given more than once"):
        scan(ds, features=F, detectors=("duplicates", "duplicates"))


def test_scan_rejects_unknown_detector_bad_features_and_bad_layer(poisoned_digits):
    _, ds, _ = poisoned_digits
    with pytest.raises(InvalidParameterError, match="unknown detector"):
        scan(ds, features=ds.X.reshape(len(ds), -1), detectors=("nope",))
    from poisonlab.exceptions import DataError

    with pytest.raises(DataError, match="features have 10 rows but the dataset has"):
        scan(ds, features=np.zeros((10, 3)), detectors=("robust_outliers",))
    from poisonlab.models import TorchClassifier, build_model

    clf = TorchClassifier(lambda s: build_model("mlp", s, hidden=(16,)), config=TrainConfig(epochs=1)).fit(ds.X, ds.y)
    with pytest.raises(InvalidParameterError, match="layer 'fc9' does not exist"):
        scan(ds, model=clf, layer="fc9")


def test_reference_model_and_retraining_emit_training_events(poisoned_digits):
    s, ds, mask = poisoned_digits
    small = ds.subset(np.arange(len(ds)) < 400)
    seen = []
    r = scan(small, detectors=("robust_outliers",), config=TrainConfig(epochs=2, seed=0), emit=seen.append)
    assert r.representation["source"].startswith("reference model")
    assert [e.epoch for e in seen if isinstance(e, EpochEnded) and e.label == "reference model"] == [1, 2]
    out = retrain_without_quarantine(small, r, s.test, config=TrainConfig(epochs=1, seed=0), emit=seen.append)
    assert out is r.retrain and out["n_removed"] == int(r.quarantine.sum())
    assert set(out) >= {"before", "after", "n_kept"} and "clean_accuracy" in out["after"]
    labels = {e.label for e in seen if isinstance(e, EpochEnded)}
    assert {"retrain before", "retrain after"} <= labels


def test_default_detectors_are_registered_sample_level_detectors(poisoned_digits):
    from poisonlab import registry

    usable = {e.name for e in registry.entries("detector", stage="data", unit="sample")}
    assert set(DEFAULT_DETECTORS) <= usable
    _, ds, _ = poisoned_digits
    with pytest.raises(InvalidParameterError, match=r"sample-level detectors; \['strip'\]"):
        scan(ds, features=ds.X.reshape(len(ds), -1), detectors=("robust_outliers", "strip"))
