"""What the HTML report shows of scores, samples and triggers, computed in the run layer
(poisonlab.runs.report_data): hand-computed values, size bounds, one preview per modality."""

import base64
import json

import numpy as np
import pytest

from poisonlab.data.dataset import Dataset
from poisonlab.runs import report_data


def _pixels(preview):
    h, w, c = preview["shape"]
    return np.frombuffer(base64.b64decode(preview["uint8_b64"]), dtype=np.uint8).reshape(h, w, c)


def test_roc_curve_hand_computed():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    mask = np.array([True, False, True, False, False, False])
    roc = report_data.roc_curve(scores, mask)
    assert roc["tpr"] == [0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert roc["fpr"] == [0.0, 0.0, 0.25, 0.25, 0.5, 0.75, 1.0]
    # ties form one step; a trapezoid over the points gives the AUROC (ties count half)
    tied = report_data.roc_curve(np.array([1.0, 1.0, 0.0]), np.array([True, False, False]))
    assert tied["fpr"] == [0.0, 0.5, 1.0] and tied["tpr"] == [0.0, 1.0, 1.0]
    from poisonlab.evaluation.detection import auroc

    rng = np.random.default_rng(0)
    s, m = rng.normal(size=500), rng.uniform(size=500) < 0.1
    s[m] += 1
    full = report_data.roc_curve(s, m, max_points=10_000)
    assert np.trapezoid(full["tpr"], full["fpr"]) == pytest.approx(auroc(s, m), abs=1e-3)
    thin = report_data.roc_curve(s, m, max_points=21)
    assert len(thin["fpr"]) <= 21 and thin["fpr"][0] == 0.0 and thin["tpr"][-1] == 1.0
    assert report_data.roc_curve(s, np.zeros(500, dtype=bool)) is None


def test_score_distribution():
    scores = np.array([0.0, 1.0, 2.0, 3.0, np.nan])
    flags = np.array([False, False, True, True, False])
    mask = np.array([False, False, False, True, True])
    d = report_data.score_distribution(scores, flags, mask, bins=3)
    assert d["edges"] == [0.0, 1.0, 2.0, 3.0]
    assert d["counts"] == {"clean": [1, 1, 1], "poison": [0, 0, 1]}
    assert d["n_nonfinite"] == 1 and d["lowest_flagged"] == 2.0 and d["n_flagged"] == 2
    flat = report_data.score_distribution(np.ones(4))  # a constant score still gets a histogram
    assert len(flat["edges"]) == report_data.BINS + 1 and sum(flat["counts"]["all"]) == 4


def test_previews_are_bounded_whatever_the_data():
    big = np.random.default_rng(0).uniform(size=(3, 3, 200, 120)).astype(np.float32)
    p = report_data.sample_preview(big, 1, "image")
    assert p["kind"] == "image" and max(p["shape"][:2]) == report_data.MAX_SIDE and p["shape"][2] == 3
    small = np.zeros((1, 1, 4, 4), dtype=np.float32)
    small[0, 0, 1, 2] = 1.0
    px = _pixels(report_data.sample_preview(small, 0, "image"))
    assert px[1, 2, 0] == 255 and px.sum() == 255  # values in [0, 1] kept, not rescaled
    text = report_data.sample_preview(np.array(["x" * 5000], dtype=object), 0, "text")
    assert len(text["text"]) == report_data.MAX_TEXT and text["length"] == 5000
    wave = report_data.sample_preview(np.random.default_rng(0).normal(size=(1, 8000)), 0, "audio", sample_rate=8000)
    assert wave["kind"] == "spectrogram" and max(wave["shape"][:2]) <= report_data.MAX_SIDE
    feats = report_data.sample_preview(np.zeros((1, 1, 32, 101)), 0, "audio")
    assert feats["kind"] == "spectrogram" and feats["shape"][0] < feats["shape"][1]


def test_tabular_preview_names_the_unusual_columns():
    X = np.zeros((50, 12))
    X[:, 3] = np.arange(50)
    X[7, 5] = 40.0  # far from its column
    ds = Dataset(X=X, y=np.arange(50) % 2, classes=("a", "b"), modality="tabular", ids=[f"r{i}" for i in range(50)],
                 feature_names=tuple(f"f{j}" for j in range(12)))
    order = np.array([7] + [i for i in range(50) if i != 7])
    rows = report_data.top_samples(ds, order, {"det": np.arange(50) == 7}, np.linspace(1, 0, 50), k=3)
    first = rows[0]
    assert first["id"] == "r7" and first["flagged_by"] == ["det"] and first["poison"] is None
    assert first["preview"]["columns"][0] == "f5" and len(first["preview"]["columns"]) == report_data.MAX_COLUMNS


def test_top_samples_capped_and_json_ready():
    ds = Dataset(X=np.zeros((40, 1, 4, 4), dtype=np.float32), y=np.arange(40) % 2, classes=("a", "b"),
                 modality="image", ids=[f"i{i}" for i in range(40)])
    rows = report_data.top_samples(ds, np.arange(40), {}, np.zeros(40), k=100, poison_mask=np.arange(40) < 3)
    assert len(rows) == report_data.MAX_TOP
    assert [r["poison"] for r in rows[:4]] == [True, True, True, False]
    json.dumps(rows)  # plain data only


def test_triggers():
    from poisonlab.attacks.data import BadNets

    X = np.full((5, 1, 8, 8), 0.5, dtype=np.float32)
    atk = BadNets(poison_rate=0.2, target=0, value=1.0, random_state=0)
    atk.poison(X, np.arange(5) % 2)
    planted = report_data.planted_trigger(atk, X, "image")
    diff = _pixels(planted["difference"])[:, :, 0]
    assert diff.max() == 255 and (diff > 0).sum() < diff.size / 4  # a small patch, not the whole image
    assert report_data.planted_trigger(object(), X, "image") is None
    masks = np.zeros((2, 8, 8))
    masks[1, :2, :2] = 1.0
    tp = report_data.trigger_previews(masks, np.ones((2, 1, 8, 8)))
    assert [t["l1"] for t in tp] == [0.0, 4.0] and tp[1]["trigger"]["shape"] == [8, 8, 1]


def test_mean_std_by():
    g = report_data.mean_std_by([0.1, 0.1, 0.2, 0.2], [0.5, 0.7, None, 0.9])
    assert g == {"x": [0.1, 0.2], "mean": [0.6, 0.9], "std": [0.1, 0.0], "n": [2, 1]}
