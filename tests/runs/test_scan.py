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
             poison_mask=mask, combine="votes")
    assert r.evaluation["robust_outliers"]["auroc"] >= 0.95
    assert r.quarantine.sum() == int(np.ceil(0.06 * len(ds)))
    top = r.table(5)
    assert top[0]["rank"] == 1 and top[0]["score"] >= top[-1]["score"] and top[0]["why"]
    again = scan(ds, features=F, detectors=("spectre", "robust_outliers", "duplicates"), contamination=0.06,
                 combine="votes")
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
    by_name = scan(ds, features=F, detectors=("robust_outliers",), contamination=0.05, combine="votes")
    pairs = scan(ds, features=F, detectors=[("robust_outliers", {"contamination": 0.2})], contamination=0.05,
                 random_state=0, combine="votes")
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
    assert {d.removesuffix("@inputs") for d in DEFAULT_DETECTORS} <= usable
    _, ds, _ = poisoned_digits
    with pytest.raises(InvalidParameterError, match=r"sample-level detectors; \['strip'\]"):
        scan(ds, features=ds.X.reshape(len(ds), -1), detectors=("robust_outliers", "strip"))


def test_evidence_scan_quarantines_by_the_strongest_calibrated_evidence(poisoned_digits):
    _, ds, mask = poisoned_digits
    F = ds.X.reshape(len(ds), -1)
    r = scan(ds, features=F, detectors=("robust_outliers", "duplicates", "label_issues@inputs"), poison_mask=mask)
    assert r.combine == "evidence" and set(r.evidence) == {"robust_outliers", "duplicates", "label_issues@inputs"}
    E = np.stack(list(r.evidence.values()))
    assert np.allclose(r.combined, E.max(axis=0))
    assert np.array_equal(r.quarantine, r.combined > 1.0)
    for name in r.evidence:  # each detector on its own rule: evidence > 1 exactly where it flags
        assert np.array_equal(r.evidence[name] > 1.0, r.flags[name])
    q = np.flatnonzero(r.quarantine)
    assert all(r.strongest[i] in r.evidence and r.evidence[r.strongest[i]][i] == r.combined[i] for i in q)
    assert sum(r.families.values()) == r.quarantine.sum()
    d = r.to_dict(top=3)
    assert d["verdict"] == r.verdict and d["families"] == r.families and d["summary"] == r.summary()
    # a budget caps the quarantine, strongest first
    capped = scan(ds, features=F, detectors=("robust_outliers", "duplicates", "label_issues@inputs"),
                  contamination=0.01)
    assert capped.quarantine.sum() == min(int(np.ceil(0.01 * len(ds))), int(r.quarantine.sum()))
    assert r.combined[capped.quarantine].min() >= r.combined[r.quarantine & ~capped.quarantine].max(initial=-np.inf)


def test_input_view_per_modality():
    from poisonlab.data import Dataset
    from poisonlab.runs.scan import input_view

    texts = np.array(["win a prize now", "call me later", "win cash now", "see you later", "prize cash win"] * 4)
    ds = Dataset(X=texts, y=np.arange(20) % 2, classes=("a", "b"), modality="text", ids=np.arange(20).astype(str))
    V = input_view(ds)
    assert V.ndim == 2 and len(V) == 20 and np.isfinite(V).all()
    waves = np.random.default_rng(0).normal(size=(6, 800))
    dsa = Dataset(X=waves, y=np.arange(6) % 2, classes=("a", "b"), modality="audio", ids=np.arange(6).astype(str))
    assert input_view(dsa).shape[0] == 6 and input_view(dsa).shape[1] > 1


def test_scan_rejects_a_bad_combination_and_budget(poisoned_digits):
    _, ds, _ = poisoned_digits
    F = ds.X.reshape(len(ds), -1)
    with pytest.raises(InvalidParameterError, match="combine must be"):
        scan(ds, features=F, detectors=("duplicates",), combine="vote")
    with pytest.raises(InvalidParameterError, match="contamination must be"):
        scan(ds, features=F, detectors=("duplicates",), contamination=0.9)
    with pytest.raises(InvalidParameterError, match="unknown detector"):
        scan(ds, features=F, detectors=("nope@inputs",))
