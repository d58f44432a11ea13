"""The monitor workflow (poisonlab.runs.monitor): fit STRIP, save, load elsewhere, score batches."""

import json

import numpy as np
import pytest

from poisonlab.attacks.data import BadNets
from poisonlab.data import load_digits
from poisonlab.exceptions import DataError
from poisonlab.models import ModelSpec, TorchClassifier, TrainConfig, build_model, read_card, save_model
from poisonlab.runs.events import StepFinished, StepStarted
from poisonlab.runs.monitor import MODEL_FILE, fit_monitor, load_monitor, read_batch, save_monitor, score_batch


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    s = load_digits()
    atk = BadNets(target=3, poison_rate=0.1, value=1.0, random_state=0)
    res = atk.poison(s.train.X, s.train.y)
    clf = TorchClassifier(lambda sp: build_model("cnn", sp), config=TrainConfig(epochs=20, lr=3e-3, batch_size=64))
    clf.fit(res.X, res.y)
    path = tmp_path_factory.mktemp("model") / "bd.safetensors"
    save_model(clf.module_, path, architecture="cnn", spec=ModelSpec((1, 8, 8), 10), n_samples=len(res.y),
               metrics={"clean_accuracy": 0.9})
    live = np.r_[s.test.X[-50:], atk.apply_trigger(s.test.X[-120:][s.test.y[-120:] != 3][:50])]
    return path, s, live


@pytest.mark.parametrize("early_stop", [None, 4.0])
def test_fit_save_load_score_gives_identical_scores(tmp_path, setting, early_stop):
    path, s, live = setting
    seen = []
    mon = fit_monitor(path, s.test, n_clean=400, n_overlays=20, false_positive_rate=0.05, early_stop=early_stop,
                      emit=seen.append)
    assert [type(e) for e in seen] == [StepStarted, StepFinished] and seen[-1].summary["n_clean"] == 400
    assert mon.architecture == "cnn" and mon.info["file_safety"]["safe"]
    direct = score_batch(mon.detector, live)
    folder = save_monitor(tmp_path / "mon", mon)
    card = read_card(folder / MODEL_FILE)
    assert card.extra["monitor"] == "strip" and card.n_samples == len(s.train) and card.metrics["clean_accuracy"] == 0.9
    loaded = load_monitor(folder)
    assert loaded.get_params() == mon.detector.get_params() and loaded.threshold_ == mon.detector.threshold_
    again = score_batch(folder, live)
    assert np.array_equal(again.scores, direct.scores) and np.array_equal(again.flags, direct.flags)
    assert np.array_equal(again.overlays, direct.overlays) and again.threshold == direct.threshold
    assert direct.flags[50:].mean() >= 0.8 and direct.flags[:50].mean() <= 0.2
    assert set(direct.flagged) == set(np.flatnonzero(direct.flags))
    if early_stop is not None:
        assert direct.overlays.min() < 20, "the sequential mode stops early for some inputs"


def test_a_monitor_saved_by_the_old_cli_asks_for_a_refit(tmp_path):
    (tmp_path / "monitor.json").write_text(json.dumps({"params": {}, "threshold": 1.0}))
    with pytest.raises(DataError, match="older poisonlab.*refit"):
        load_monitor(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_monitor(tmp_path / "nowhere")


def test_read_batch_refuses_what_it_cannot_read(tmp_path):
    np.savez(tmp_path / "b.npz", inputs=np.zeros((2, 3)))
    with pytest.raises(DataError, match="under 'X'"):
        read_batch(tmp_path / "b.npz")
    with pytest.raises(DataError, match="does not exist"):
        read_batch(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_batch(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="never unpickled"):
        read_batch(tmp_path / "obj.npz")
