"""`poisonlab demo`: honest defaults per modality, and a closing sentence that claims the poisoned
model passes an accuracy check only when it does (within 1 point of the clean model, ASR at least
50 points above the clean model's ASR on the same triggered inputs)."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from poisonlab.cli.main import (DEMO_MAX_ACCURACY_DROP, DEMO_MIN_ASR_MARGIN, app, demo_defaults,
                                demo_scenario, demo_verdict)
from poisonlab.runs import Scenario, load_scenario

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLAIM = "passes an ordinary accuracy check"


def _m(acc, asr=None):
    return {"clean_accuracy": acc, **({"attack_success_rate": asr} if asr is not None else {})}


def test_the_claim_needs_both_accuracy_within_a_point_and_a_wide_asr_margin():
    assert DEMO_MAX_ACCURACY_DROP == 0.01 and DEMO_MIN_ASR_MARGIN == 0.50
    ok = demo_verdict(_m(0.975, 0.99), _m(0.980, 0.02))
    assert ok["passes_accuracy_check"] and ok["backdoor"] and ok["sentence"].startswith("The poisoned model " + CLAIM)
    assert "2.00% for the clean model on the same inputs" in ok["sentence"]
    # issue 16's SMS Spam demo: 4.1 points lost
    costly = demo_verdict(_m(0.9291, 0.926), _m(0.9704, 0.05))
    assert not costly["passes_accuracy_check"] and costly["backdoor"]
    assert CLAIM not in costly["sentence"].replace("does not show a poisoned model passing", "")
    assert "-4.13 points" in costly["sentence"] and "would notice" in costly["sentence"]
    # issue 16's Adult demo: the clean model already maps the trigger to the target 86.2% of the time
    weak = demo_verdict(_m(0.853, 0.999), _m(0.856, 0.862))
    assert weak["passes_accuracy_check"] and not weak["backdoor"]
    assert "backdoor is weak" in weak["sentence"] and "86.20% for the clean model" in weak["sentence"]
    assert "does not show" in weak["sentence"]
    # a gain in accuracy is no giveaway; exactly 1 point lost still passes, 50 points margin too
    assert demo_verdict(_m(0.99, 0.9), _m(0.95, 0.1))["passes_accuracy_check"]
    edge = demo_verdict(_m(0.96, 0.55), _m(0.97, 0.05))
    assert edge["passes_accuracy_check"] and edge["backdoor"]
    # an attack without a trigger has no ASR to claim
    flip = demo_verdict(_m(0.9), _m(0.95))
    assert not flip["backdoor"] and "no trigger" in flip["sentence"]


def test_demo_defaults_per_modality():
    assert demo_defaults("digits")["params"] == {"poison_rate": 0.1, "target": 0}
    text = demo_defaults("sms-spam")
    assert text["attack"] == "badword" and text["params"]["poison_rate"] <= 0.01 and text["params"]["n_insert"] >= 5
    tab = demo_defaults("adult")
    assert tab["attack"] == "tabular_trigger" and tab["params"]["target"] == 1
    assert set(tab["params"]["trigger"]) == {"education", "occupation", "hours-per-week"}
    assert demo_defaults("fsdd")["attack"] == "audio_trigger"
    assert demo_defaults("mnist")["dataset"] == {"name": "mnist", "train_size": 10000}
    # another attack keeps only the rate and target it declares
    assert demo_defaults("adult", "random_label_flip")["params"] == {"poison_rate": 0.01}
    s = demo_scenario("sms-spam", poison_rate=0.05, target=1, epochs=2, seed=3)
    assert s["attacks"][0]["params"] == {"poison_rate": 0.05, "target": 1, "n_insert": 8}
    assert s["model"]["train"]["epochs"] == 2 and s["seeds"] == [3]


@pytest.mark.parametrize("example,dataset", [("demo.yaml", "digits"), ("text-sms-spam.yaml", "sms-spam"),
                                             ("tabular-adult.yaml", "adult"), ("audio-fsdd.yaml", "fsdd")])
def test_modality_examples_are_the_demo_defaults(example, dataset):
    """`poisonlab run examples/<modality>.yaml` runs what `poisonlab demo --dataset D` runs."""
    ex = load_scenario(EXAMPLES / example).to_dict()
    demo = Scenario.model_validate(demo_scenario(dataset)).to_dict()
    for key in ("dataset", "model", "attacks", "seeds"):
        assert ex[key] == demo[key], key


def test_adult_demo_targets_the_minority_class_with_rare_trigger_values(data_dir):
    from poisonlab.data import load_adult

    train = load_adult(data_dir).train
    d = demo_defaults("adult")
    assert d["params"]["target"] == int(np.argmin(np.bincount(train.y)))
    raw, cols = np.asarray(train.info["raw"]), list(train.info["raw_columns"])
    for column, value in d["params"]["trigger"].items():
        share = np.mean(raw[:, cols.index(column)] == str(value))
        assert 0 < share < 0.01, (column, share)  # valid, and rare


def test_demo_prints_both_asrs_and_a_verdict_that_matches_the_numbers(tmp_path):
    out = tmp_path / "demo.json"
    r = runner.invoke(app, ["demo", "--epochs", "12", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    poisoned, clean = rec["results"]["train"]["poisoned"], rec["results"]["train"]["clean"]
    assert poisoned["clean_model_asr"] == clean["attack_success_rate"]
    verdict = rec["demo_verdict"]
    holds = (clean["clean_accuracy"] - poisoned["clean_accuracy"] <= 0.01
             and poisoned["attack_success_rate"] - clean["attack_success_rate"] >= 0.5)
    assert (verdict["passes_accuracy_check"] and verdict["backdoor"]) == holds
    text = " ".join(r.output.split())
    assert (CLAIM in text and "does not show" not in text) == holds
    assert "for the clean model on the same inputs" in text
    assert f"{clean['attack_success_rate']:.2%}" in text and f"{poisoned['attack_success_rate']:.2%}" in text
