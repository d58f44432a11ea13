"""Scenarios over a user's own files and models: .npz, CSV, a torch factory, a scikit-learn
estimator."""

import numpy as np
import pytest

from poisonlab.runs import Runner, Scenario, ScenarioError

FLIP = [{"name": "random_label_flip", "params": {"poison_rate": 0.1}}]


@pytest.fixture
def tabular_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    path = tmp_path / "mine.npz"
    np.savez(path, X=X, y=y)
    return path


def test_user_npz_and_torch_factory(tabular_npz):
    s = Scenario.model_validate({
        "dataset": {"path": str(tabular_npz), "modality": "tabular", "test_fraction": 0.3},
        "model": {"callable": "tests.runs._user_models:small_mlp", "params": {"hidden": 8},
                  "train": {"epochs": 20, "lr": 0.01}},
        "attacks": FLIP, "defenses": {"data": ["knn_label"]}})
    record = Runner().run(s)
    res = record["results"]
    assert res["data"]["train"]["n"] == 210 and res["data"]["test"]["n"] == 90
    assert res["train"]["poisoned"]["clean_accuracy"] > 0.8
    assert res["scan"]["evaluation"]["knn_label"]["auroc"] > 0.8  # flipped labels stand out
    assert str(tabular_npz) in record["environment"]["data_files"]


def test_user_csv_and_sklearn_estimator(tmp_path):
    rng = np.random.default_rng(1)
    rows = ["a,b,colour,label"]
    for _ in range(200):
        a, b = rng.normal(size=2)
        rows.append(f"{a:.4f},{b:.4f},{rng.choice(['red', 'blue'])},{'yes' if a > 0 else 'no'}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    s = Scenario.model_validate({
        "dataset": {"path": str(tmp_path / "t.csv"), "params": {"label_column": "label"}},
        "model": {"callable": "tests.runs._user_models:logistic"}, "attacks": FLIP})
    res = Runner().run(s)["results"]
    assert res["train"]["poisoned"]["clean_accuracy"] > 0.8
    assert res["train"]["poisoned"]["weights_sha256"] is None  # a scikit-learn model has no torch weights


def test_csv_without_label_column_fails_at_load(tmp_path):
    (tmp_path / "t.csv").write_text("a,label\n1,x\n")
    with pytest.raises(ScenarioError, match=r"^dataset\.params: a CSV needs params\.label_column"):
        Scenario.model_validate({"dataset": {"path": str(tmp_path / "t.csv")}})


def test_callable_that_is_not_there():
    with pytest.raises(ScenarioError, match=r"^model\.callable: .*has no attribute 'nope'"):
        Scenario.model_validate({"dataset": "digits", "model": {"callable": "tests.runs._user_models:nope"}})
