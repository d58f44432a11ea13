"""Continuous retraining under attack: the retraining block is validated at load, the loop is
seeded, the group's mislabels hurt the undefended model and reputation + quarantine keep them out."""

import numpy as np
import pytest

from poisonlab.data.dataset import Dataset
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.runs import Scenario
from poisonlab.runs.events import RetrainingRoundEnded
from poisonlab.runs.retraining import RetrainingConfig, run_retraining, targeted_mask
from poisonlab.runs.scenario import ScenarioError
from poisonlab.runs.steps import run_cell


def blobs(n, seed):
    """Two Gaussian classes in 5 dimensions, 2 standard deviations apart on every axis."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = (rng.normal(size=(n, 5)) + 1.2 * y[:, None]).astype(np.float32)
    return Dataset(X=X, y=y, classes=("benign", "fraud"), modality="tabular", ids=np.arange(n).astype(str))


CFG = dict(rounds=4, seed_fraction=0.05, honest_contributors=6, samples_per_contributor=10, group_size=3,
           attacker_share=0.6, target_class=1, flip_to=0, min_verified=5)


@pytest.fixture(scope="module")
def small():
    return run_retraining(blobs(1500, 0), blobs(600, 1), RetrainingConfig(**CFG), random_state=0)


def test_the_group_hurts_the_undefended_model_and_not_the_defended_one(small):
    final = small["final"]
    deal = small["deal"]
    assert deal["attack_per_round"] % 3 == 0 and deal["attack_total"] == 4 * deal["attack_per_round"]
    assert final["undefended"]["attack_admitted"] == deal["attack_total"] > 0
    assert final["undefended"]["targeted_error"] >= final["honest"]["targeted_error"] + 0.3
    assert final["defended"]["attack_admitted"] == 0
    assert abs(final["defended"]["targeted_error"] - final["honest"]["targeted_error"]) <= 0.05
    assert final["defended"]["group_rejected"] == 3 and final["defended"]["honest_rejected"] == 0
    assert [len(small["arms"][a]) for a in ("honest", "undefended", "defended")] == [5, 5, 5]
    assert {d["kind"] for d in small["decisions"]} <= {"quarantine", "release", "reject"}
    assert {d["subject"] for d in small["decisions"] if d["kind"] == "reject"} == set(deal["group"])


def test_the_same_seed_gives_the_same_run_and_another_seed_another_deal(small):
    again = run_retraining(blobs(1500, 0), blobs(600, 1), RetrainingConfig(**CFG), random_state=0)
    strip = lambda out: [[{k: v for k, v in r.items() if k != "fit_seconds"} for r in out["arms"][a]]  # noqa: E731
                         for a in sorted(out["arms"])]
    assert strip(again) == strip(small) and again["decisions"] == small["decisions"]
    other = run_retraining(blobs(1500, 0), blobs(600, 1), RetrainingConfig(**CFG), random_state=1)
    assert other["decisions"] != small["decisions"]


def test_patience_and_camouflage_keep_some_of_the_groups_labels_correct(small):
    cfg = RetrainingConfig(**{**CFG, "patience": 1, "camouflage": 0.5})
    out = run_retraining(blobs(1500, 0), blobs(600, 1), cfg, random_state=0)
    per_account = small["deal"]["attack_per_round"] // 3
    lied = per_account - int(round(0.5 * per_account))
    # no lie in the first round, then `lied` of each account's samples per round
    assert out["deal"]["attack_total"] == 3 * 3 * lied
    assert out["arms"]["undefended"][1]["attack_admitted"] == 0
    assert out["final"]["undefended"]["attack_admitted"] == out["deal"]["attack_total"]


def test_keyword_targets_only_the_class_texts_holding_a_keyword():
    X = np.array(["WIN a prize", "free entry now", "see you at lunch", "win-win lunch", "winner"], dtype=object)
    y = np.array([1, 1, 1, 0, 1])
    cfg = RetrainingConfig(target_kind="keyword", keywords=("win", "free"))
    assert targeted_mask(X, y, cfg, "text").tolist() == [True, True, False, False, False]
    with pytest.raises(InvalidParameterError, match="needs text"):
        targeted_mask(np.zeros((5, 2)), y, cfg, "tabular")


@pytest.mark.parametrize("block, path", [
    ({"rounds": 0}, "retraining.rounds"),
    ({"group_size": 30, "honest_contributors": 20}, "retraining.group_size"),
    ({"target_kind": "subgroup"}, "retraining.target_kind"),
    ({"flip_to": 1, "target_class": 1}, "retraining.flip_to"),
    ({"target_kind": "keyword"}, "retraining.keywords"),
    ({"min_reputation": 2.0}, "retraining.min_reputation"),
    ({"learner": "xgboost"}, "retraining.learner"),
    ({"patience": 10, "rounds": 10}, "retraining.patience"),
    ({"camouflage": 1.0}, "retraining.camouflage"),
])
def test_bad_retraining_blocks_fail_at_load_in_one_line(block, path):
    with pytest.raises(ScenarioError) as info:
        Scenario.model_validate({"dataset": "digits", "retraining": block})
    msg = str(info.value)
    assert msg.startswith(path + ":") and "\n" not in msg


def test_a_retraining_scenario_names_no_other_attack_or_defense():
    with pytest.raises(ScenarioError, match="retraining: a retraining scenario"):
        Scenario.model_validate({"dataset": "digits", "retraining": {},
                                 "attacks": [{"name": "badnets", "params": {"poison_rate": 0.1, "target": 0}}]})
    with pytest.raises(ScenarioError, match="steps: the retraining step needs"):
        Scenario.model_validate({"dataset": "digits", "steps": ["retraining"]})


def test_bad_values_found_only_with_the_data_fail_in_one_line():
    train = blobs(400, 0)
    with pytest.raises(InvalidParameterError, match=r"target_class must be a class .* got 3"):
        run_retraining(train, blobs(100, 1), RetrainingConfig(**{**CFG, "target_class": 3}))
    with pytest.raises(DataError, match="honest pool holds"):
        run_retraining(train, blobs(100, 1), RetrainingConfig(**{**CFG, "samples_per_contributor": 50}))
    with pytest.raises(DataError, match="fewer than one per account"):
        run_retraining(train, blobs(100, 1), RetrainingConfig(**{**CFG, "rounds": 40, "samples_per_contributor": 1,
                                                                         "attacker_share": 0.1}))


def test_the_retraining_step_runs_through_the_run_layer_with_events():
    s = Scenario.model_validate({"name": "rt", "dataset": "digits", "seeds": [3],
                                 "retraining": {"rounds": 2, "honest_contributors": 5, "samples_per_contributor": 10,
                                                "group_size": 2, "target_class": 1, "flip_to": 7,
                                                "min_verified": 5}})
    assert s.steps_to_run() == ("retraining",)
    events = []
    out = run_cell(s, emit=events.append)["results"]["retraining"]
    rounds = [e for e in events if isinstance(e, RetrainingRoundEnded)]
    assert len(rounds) == 3 * 3 and {e.arm for e in rounds} == {"honest", "undefended", "defended"}
    assert out["config"]["rounds"] == 2 and out["deal"]["group"] == ["group-0", "group-1"]
    assert out["decisions"]["by_kind"]["reject"] == 2 and out["final"]["defended"]["attack_admitted"] == 0
    assert 0.0 <= out["final"]["honest"]["accuracy"] <= 1.0
