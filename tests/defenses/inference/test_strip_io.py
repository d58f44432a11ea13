"""STRIP.save / STRIP.load: a fitted detector round-trips through JSON + npz (no pickle)."""

import json

import numpy as np
import pytest

from poisonlab.defenses.inference import STRIP
from poisonlab.exceptions import DataError, NotFittedError


class CornerModel:
    """Class 0 when the corner pixel is lit (the backdoor), else follows pixel 1."""

    def predict_proba(self, X):
        X = np.asarray(X).reshape(len(X), -1)
        p = np.stack([X[:, 1], 1 - X[:, 1]], 1)
        return np.where(X[:, :1] > 0.9, [[1.0, 0.0]], p)


class WordModel:
    """Spam if the word 'cf' appears, else by the share of words starting with 'w'."""

    def predict_proba(self, X):
        out = []
        for t in X:
            words = str(t).split()
            if "cf" in words:
                out.append([0.0, 1.0])
            else:
                w = sum(x.startswith("w") for x in words) / max(len(words), 1)
                out.append([1 - w, w])
        return np.asarray(out)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 0.45, (300, 1, 3, 3))
    live = rng.uniform(0, 0.45, (40, 1, 3, 3))
    live[:20, 0, 0, 0] = 1.0  # the first 20 carry the trigger
    return clean, live


@pytest.mark.parametrize("params", [
    {},
    {"boundary": "normal", "false_positive_rate": 0.05},
    {"early_stop": 3.0, "round_overlays": 5},
    {"superimpose": "blend", "weight": 0.05, "clip_max": 2.0, "batch_size": 7},
])
def test_save_load_gives_identical_scores_and_flags(tmp_path, batch, params):
    clean, live = batch
    det = STRIP(n_overlays=20, random_state=3, **params).fit(clean, model=CornerModel())
    det.save(tmp_path / "strip")
    again = STRIP.load(tmp_path / "strip", model=CornerModel())
    assert again.get_params() == det.get_params()
    assert again.threshold_ == det.threshold_ and again.n_classes_ == det.n_classes_
    assert (again.mode_, again.high_) == (det.mode_, det.high_)
    assert np.array_equal(again.pool_, det.pool_) and again.pool_.dtype == det.pool_.dtype
    assert np.array_equal(again.scores_, det.scores_) and np.array_equal(again.flags_, det.flags_)
    s1, used1 = det.score(live, return_overlays=True)
    s2, used2 = again.score(live, return_overlays=True)
    assert np.array_equal(s1, s2) and np.array_equal(used1, used2)
    assert np.array_equal(det.flag(live), again.flag(live))
    assert det.flag(live)[:20].mean() >= 0.9, "the toy backdoor is caught, so the comparison means something"


@pytest.mark.parametrize("random_state", [None, "generator"])
def test_an_unseeded_or_generator_random_state_is_saved_as_the_seed_fit_drew(tmp_path, batch, random_state):
    clean, live = batch
    rs = np.random.default_rng(5) if random_state == "generator" else None
    det = STRIP(n_overlays=20, random_state=rs).fit(clean, model=CornerModel())
    det.save(tmp_path)
    assert json.loads((tmp_path / "strip.json").read_text())["params"]["random_state"] == det.seed_
    again = STRIP.load(tmp_path, model=CornerModel())
    assert again.seed_ == det.seed_ and np.array_equal(again.score(live), det.score(live))


def test_text_pool_round_trips_as_strings_without_pickle(tmp_path):
    rng = np.random.default_rng(1)
    vocab = np.array(["win", "wow", "lunch", "see", "you", "later", "call", "me"])
    clean = np.array([" ".join(rng.choice(vocab, 6)) for _ in range(120)], dtype=object)
    det = STRIP(n_overlays=10, false_positive_rate=0.05).fit(clean, model=WordModel())
    det.save(tmp_path)
    with np.load(tmp_path / "strip.npz", allow_pickle=False) as z:  # nothing pickled
        assert z["pool"].dtype.kind == "U"
    again = STRIP.load(tmp_path, model=WordModel())
    assert again.pool_.dtype == object and again.mode_ == "words"
    live = np.array(["cf win lunch", "see you later call me"], dtype=object)
    assert np.array_equal(again.score(live), det.score(live))


def test_saved_state_names_its_format_and_settings(tmp_path, batch):
    clean, _ = batch
    STRIP(n_overlays=20, early_stop=4.0).fit(clean, model=CornerModel()).save(tmp_path)
    state = json.loads((tmp_path / "strip.json").read_text())
    assert state["format"] == "poisonlab.strip" and state["version"] == 1
    assert state["params"]["early_stop"] == 4.0 and state["params"]["round_overlays"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["strip.json", "strip.npz"]


def test_unfitted_save_and_bad_folders_are_refused(tmp_path, batch):
    clean, _ = batch
    with pytest.raises(NotFittedError):
        STRIP().save(tmp_path / "x")
    with pytest.raises(DataError, match="strip.json is missing"):
        STRIP.load(tmp_path, model=CornerModel())
    STRIP(n_overlays=20).fit(clean, model=CornerModel()).save(tmp_path)
    with pytest.raises(DataError, match="holds no model.safetensors"):
        STRIP.load(tmp_path)
    state = json.loads((tmp_path / "strip.json").read_text())
    for text, match in [
        ("{not json", "is not a saved STRIP"),
        (json.dumps({**state, "version": 99}), "version 99"),
        (json.dumps({**state, "params": {**state["params"], "n_overlays": 0}}), "strip.json: STRIP.n_overlays must be"),
        (json.dumps({**state, "mode": "smear"}), "inconsistent state"),
        (json.dumps({"format": "poisonlab.strip", "version": 1, "params": {}}), "damaged saved STRIP"),
    ]:
        (tmp_path / "strip.json").write_text(text)
        with pytest.raises(DataError, match=match):
            STRIP.load(tmp_path, model=CornerModel())
