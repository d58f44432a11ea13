"""The data scan: library pipeline and the scan-data command."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from poisonlab import InvalidParameterError
from poisonlab.attacks.data import BadNets
from poisonlab.cli.main import app
from poisonlab.data import load_digits
from poisonlab.defenses.data.scan import scan
from poisonlab.models import TrainConfig

runner = CliRunner()


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


def test_scan_rejects_unknown_detector_and_bad_layer(poisoned_digits):
    _, ds, _ = poisoned_digits
    with pytest.raises(InvalidParameterError, match="unknown detector"):
        scan(ds, features=ds.X.reshape(len(ds), -1), detectors=("nope",))
    from poisonlab.models import TorchClassifier, build_model

    clf = TorchClassifier(lambda s: build_model("mlp", s, hidden=(16,)), config=TrainConfig(epochs=1)).fit(ds.X, ds.y)
    with pytest.raises(InvalidParameterError, match="layer 'fc9' does not exist"):
        scan(ds, model=clf, layer="fc9")


def test_scan_data_cli_end_to_end(tmp_path):
    src = tmp_path / "p.npz"
    r = runner.invoke(app, ["attack", "badnets", "--dataset", "digits", "--out", str(src),
                            "-p", "poison_rate=0.05", "-p", "value=1.0"])
    assert r.exit_code == 0, r.output
    before = src.read_bytes()
    out = tmp_path / "scan"
    r = runner.invoke(app, ["scan-data", "--input", str(src), "--epochs", "8", "--retrain",
                            "--detectors", "spectre,robust_outliers,activation_clustering",
                            "--out-dir", str(out), "--top", "5"])
    assert r.exit_code == 0, r.output
    assert src.read_bytes() == before, "the scan must not change the user's data"
    rep = json.loads((out / "scores.json").read_text())
    assert rep["evaluation"]["robust_outliers"]["auroc"] >= 0.9
    assert set(rep["retrain"]) >= {"before", "after", "n_removed"}
    assert "attack_success_rate" in rep["retrain"]["before"]
    q = (out / "quarantine.txt").read_text().split()
    assert len(q) == rep["n_quarantined"] and all(i.startswith("digits:") for i in q)
    header = (out / "scores.csv").read_text().splitlines()[0]
    assert header.startswith("id,label,combined,quarantined,spectre,spectre_flag")


def test_scan_data_cli_bad_input(tmp_path):
    r = runner.invoke(app, ["scan-data", "--dataset", "digits", "--features", str(tmp_path / "missing.npy")])
    assert r.exit_code == 2 and "missing.npy" in r.output
    f = tmp_path / "f.npy"
    np.save(f, np.zeros((10, 3)))
    r = runner.invoke(app, ["scan-data", "--dataset", "digits", "--features", str(f)])
    assert r.exit_code == 2 and "features have 10 rows but the dataset has 1347 samples" in r.output
    np.save(f, np.zeros((1347, 3)))
    r = runner.invoke(app, ["scan-data", "--dataset", "digits", "--contamination", "0.9", "--features", str(f)])
    assert r.exit_code == 2 and "contamination must be in" in r.output
    w = tmp_path / "m.pt"
    w.write_bytes(b"not a model")
    r = runner.invoke(app, ["scan-data", "--dataset", "digits", "--model", str(w)])
    assert r.exit_code == 2 and "safetensors" in r.output
