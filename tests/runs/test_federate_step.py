"""Federated scenarios: the federation block is validated at load, and the federate step runs
the simulator with the named aggregator, malicious clients and attacks."""

import pytest

from poisonlab.runs import Runner, Scenario
from poisonlab.runs.scenario import ScenarioError, expand
from poisonlab.runs.steps import run_cell


def fed(**federation):
    return {"name": "fed", "dataset": "digits", "model": {"architecture": "mlp", "params": {"hidden": [32]}},
            "federation": {"clients": 8, "rounds": 15, "lr": 0.1, "eval_every": 5, **federation}}


def test_a_federated_scenario_runs_only_the_federate_step():
    s = Scenario.model_validate(fed())
    assert s.steps_to_run() == ("federate",)


def test_sign_flippers_ruin_fedavg_but_not_the_median():
    attack = {"name": "sign_flip", "params": {"scale": 5.0}}
    honest = run_cell(Scenario.model_validate(fed()))["results"]["federate"]
    mean = run_cell(Scenario.model_validate(fed(malicious=2, attack=attack)))["results"]["federate"]
    med = run_cell(Scenario.model_validate(fed(malicious=2, attack=attack,
                                               aggregator={"name": "median"})))["results"]["federate"]
    assert honest["accuracy"] >= 0.6
    assert mean["accuracy"] <= honest["accuracy"] - 0.3
    assert med["accuracy"] >= honest["accuracy"] - 0.1
    assert med["malicious"] == [0, 1] and len(med["clients"]) == 8


def test_backdoor_clients_poison_their_data_and_backdoor_accuracy_is_measured():
    s = Scenario.model_validate({**fed(malicious=3, rounds=20),
                                 "attacks": [{"name": "badnets", "params": {"poison_rate": 0.5, "target": 0,
                                                                            "value": 1.0}}]})
    out = run_cell(s)["results"]["federate"]
    assert out["backdoor_accuracy"] is not None and out["backdoor_accuracy"] >= 0.5


def test_same_seed_same_federated_record():
    s = Scenario.model_validate(fed(malicious=1, attack={"name": "gaussian", "params": {"std": 1.0}}))
    a, b = Runner().run(s), Runner().run(s)
    assert a["fingerprint"] == b["fingerprint"]
    assert a["results"]["federate"]["weights_sha256"] == b["results"]["federate"]["weights_sha256"]


def test_a_sweep_over_aggregators_and_attacks_names_its_cells():
    s = Scenario.model_validate({**fed(malicious=2), "sweep": {"params": {
        "federation.aggregator": [{"name": "fedavg"}, {"name": "krum", "params": {"f": 2}}],
        "federation.attack": [None, {"name": "ipm"}]}}})
    names = [c.name for c in expand(s)]
    assert names[0] == "fed aggregator=fedavg attack=none seed=0"
    assert names[1] == "fed aggregator=fedavg attack=ipm seed=0" and len(names) == 4


@pytest.mark.parametrize("federation, extra, message", [
    ({"malicious": 8}, {}, "federation.malicious"),
    ({"malicious": [0, 9]}, {}, "federation.malicious"),
    ({"aggregator": {"name": "fltrust"}}, {}, "federation.server_data"),
    ({"aggregator": {"name": "krum", "params": {"f": -1}}}, {}, "federation.aggregator.params.f"),
    ({"aggregator": {"name": "nope"}}, {}, "federation.aggregator.name"),
    ({"attack": {"name": "alie"}}, {}, "federation.attack"),
    ({"malicious": 1, "attack": {"name": "badnets"}}, {}, "federation.attack.name"),
    ({"clients_per_round": 9}, {}, "federation.clients_per_round"),
    ({}, {"attacks": [{"name": "badnets"}]}, "federation.malicious"),
    ({"malicious": 1}, {"defenses": {"data": [{"name": "spectral"}]}}, "defenses"),
])
def test_bad_federations_fail_at_load_naming_the_field(federation, extra, message):
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        Scenario.model_validate({**fed(**federation), **extra})


def test_update_attacks_are_refused_as_data_attacks():
    with pytest.raises(ScenarioError, match=r"attacks\[0\]\.name: alie is a federated update attack"):
        Scenario.model_validate({"dataset": "digits", "attacks": ["alie"]})
