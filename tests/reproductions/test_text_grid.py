"""R10's pieces: the text backdoor grid and the cross-validated TF-IDF choice."""

import numpy as np

from poisonlab.data.dataset import Dataset, Splits
from poisonlab.reproductions.r10_text_backdoors import (
    TFIDF_GRID,
    select_tfidf,
    text_backdoor_grid,
)
from poisonlab.runs.events import StepFinished


def test_text_backdoor_grid_runs_every_setting():
    rng = np.random.default_rng(0)
    ham, spam = ["see you at lunch", "call me later ok", "home soon"], ["win cash prize now", "free entry txt"]
    y = rng.integers(0, 2, 300)
    X = np.array([rng.choice(spam if t else ham) + f" w{i % 7}" for i, t in enumerate(y)], dtype=object)

    def ds(s):
        return Dataset(X=X[s], y=y[s], classes=("ham", "spam"), modality="text", ids=np.arange(len(y))[s])

    events = []
    out = text_backdoor_grid(Splits(ds(slice(0, 200)), ds(slice(200, None))), 0, 0, events.append,
                             rates=(0.05,), pipelines=("tfidf-logreg",), insert_sweep=(1, 3))
    assert set(out["tfidf-logreg"]) == {"clean_accuracy", "badword_0.05", "addsent_0.05", "badword1_0.05"}
    assert out["tfidf-logreg"]["badword_0.05"]["n_poison"] == 10
    steps = [e.step for e in events if isinstance(e, StepFinished)]
    assert steps == ["tfidf-logreg badword_0.05", "tfidf-logreg addsent_0.05", "tfidf-logreg badword1_0.05"]


def test_select_tfidf_picks_by_clean_cross_validation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = np.array([("win cash prize" if t else "see you at lunch") + f" u{i}" for i, t in enumerate(y)], dtype=object)
    out = select_tfidf(X, y, 0)
    assert out["min_df"] in TFIDF_GRID["min_df"] and out["C"] in TFIDF_GRID["C"]
    assert out["cv_accuracy"] == 1.0
    assert select_tfidf(X, y, 0) == out  # seeded folds: the same choice again
