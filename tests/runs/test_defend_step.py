"""The runner's "defend" step: training-stage defenses (defenses.training) named in a scenario
train on the poisoned set and report the defended model beside the undefended one."""

import numpy as np
import pytest

from poisonlab.runs import Scenario
from poisonlab.runs.scenario import ScenarioError
from poisonlab.runs.steps import run_cell

BASE = {
    "name": "defend",
    "dataset": "digits",
    "model": {"architecture": "mlp", "params": {"hidden": [32]},
              "train": {"epochs": 12, "batch_size": 32, "lr": 0.003}},
    "attacks": [{"name": "badnets", "params": {"poison_rate": 0.1, "target": 0, "value": 1.0}}],
    "clean_baseline": False,
}


@pytest.fixture(scope="module")
def defended():
    cell = Scenario.model_validate({**BASE, "defenses": {"training": [
        {"name": "abl", "params": {"isolation_epochs": 12, "isolation_rate": 0.05, "finetune_epochs": 2,
                                   "unlearning_epochs": 2}},
        {"name": "dpa", "params": {"k": 6}},
        {"name": "dp_sgd", "params": {"noise_multiplier": 1.0}},
    ]}})
    return cell, run_cell(cell)


def test_defend_runs_after_train_and_reports_each_trainer(defended):
    cell, out = defended
    assert cell.steps_to_run() == ("poison", "train", "defend")
    res = out["results"]["defend"]
    assert list(res) == ["abl", "dpa", "dp_sgd"]
    for m in res.values():
        assert 0.0 <= m["clean_accuracy"] <= 1.0 and 0.0 <= m["attack_success_rate"] <= 1.0


def test_abl_isolation_is_scored_against_the_planted_poison(defended):
    abl = defended[1]["results"]["defend"]["abl"]
    # 5% of 1347 rows isolated; the 135 BadNets rows have the lowest loss under the loss floor
    assert abl["n_flagged"] == int(np.ceil(0.05 * 1347))
    assert abl["detection"]["precision"] >= 0.85


def test_certificate_and_privacy_are_reported(defended):
    res = defended[1]["results"]["defend"]
    cert = res["dpa"]["certificate"]
    assert cert["threat"] == "insertion_removal" and cert["n_models"] == 6
    acc = list(cert["certified_accuracy"].values())
    assert acc == sorted(acc, reverse=True), "certified accuracy must not grow with the radius"
    # 6 models: no input survives 6 changed partitions (each change moves at most one vote)
    assert cert["certified_accuracy"]["10"] == 0.0
    assert 0.0 < res["dp_sgd"]["epsilon"] < np.inf and res["dp_sgd"]["delta"] == 1e-5


def test_same_seed_same_defended_models(defended):
    cell, out = defended
    again = run_cell(Scenario.model_validate({**BASE, "defenses": {"training": [{"name": "dp_sgd",
                                                                                   "params": {"noise_multiplier": 1.0}}]}}))
    a, b = out["results"]["defend"]["dp_sgd"], again["results"]["defend"]["dp_sgd"]
    assert a["weights_sha256"] == b["weights_sha256"] and a["epsilon"] == b["epsilon"]


@pytest.mark.parametrize("trainers, message", [
    ([{"name": "nope"}], "defenses.training[0]"),
    ([{"name": "dpa", "params": {"k": 1}}], "defenses.training[0].params.k"),
    ([{"name": "dp_sgd", "params": {"noise_multiplier": -1.0}}], "noise_multiplier"),
])
def test_bad_trainers_fail_at_load(trainers, message):
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Scenario.model_validate({**BASE, "defenses": {"training": trainers}})
