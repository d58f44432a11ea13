"""Scenarios: every mistake fails at load time with the field's path; sweeps expand in order."""

from pathlib import Path

import numpy as np
import pytest

from poisonlab.runs import Scenario, ScenarioError, expand, load_scenario
from poisonlab.runs.scenario import config_hash, set_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BADNETS = {"name": "badnets", "params": {"poison_rate": 0.1, "target": 0}}


def _scenario(**fields):
    return Scenario.model_validate({"name": "t", "dataset": "digits", **fields})


@pytest.mark.parametrize("fields, message", [
    ({"attacks": [{"name": "badnets", "params": {"poison_rate": 1.5}}]},
     r"^attacks\[0\]\.params\.poison_rate: .*poison_rate.*1\.5"),
    ({"attacks": [BADNETS, {"name": "blended", "params": {"alpha": -1.0}}]},
     r"^attacks\[1\]\.params\.alpha: "),
    ({"attacks": [{"name": "badnetz"}]}, r"^attacks\[0\]\.name: unknown attack 'badnetz'"),
    ({"attacks": [{"name": "badnets", "params": {"bogus": 1}}]},
     r"^attacks\[0\]\.params\.bogus: badnets has no parameter 'bogus'"),
    ({"dataset": "digitz"}, r"^dataset.*unknown dataset 'digitz'"),
    ({"dataset": {"path": "/no/such/file.npz"}}, r"^dataset\.path: /no/such/file\.npz does not exist"),
    ({"model": {"train": {"epochs": 0}}}, r"^model\.train\.epochs: epochs must be"),
    ({"model": {"train": {"epox": 3}}}, r"^model\.train\.epox: TrainConfig has no field 'epox'"),
    ({"model": {"architecture": "resnet-9000"}}, r"^model\.architecture: .*unknown architecture"),
    ({"model": {"callable": "no_such_module_xyz:make"}}, r"^model\.callable: cannot import"),
    ({"seeds": "x"}, r"^seeds: "),
    ({"seeds": [1, 1]}, r"^seeds: seeds must be distinct"),
    ({"defenses": {"data": [{"name": "spectral", "params": {"contamination": 0.9}}]}},
     r"^defenses\.data\[0\]\.params\.contamination: "),
    ({"defenses": {"data": [{"name": "strip"}]}}, r"^defenses\.data\[0\]\.name: .*does not work at the data stage"),
    ({"metrics": ["recall@5"]}, r"^metrics\[0\]: unknown metric"),
    ({"steps": ["poison", "dance"]}, r"^steps\[1\]: unknown step 'dance'"),
    ({"oops": 1}, r"^oops: unknown field"),
    ({"contamination": 0.9}, r"^contamination: "),
    ({"retrain": True}, r"retrain.*name defenses\.data"),
    ({"attacks": [BADNETS], "sweep": {"params": {"attacks[0].params.poison_rate": [0.1, 2.0]}}},
     r"sweep.*value 2\.0.*poison_rate"),
])
def test_bad_scenarios_fail_at_load_naming_the_field(fields, message):
    with pytest.raises(ScenarioError, match=message) as info:
        _scenario(**fields)
    assert "\n" not in str(info.value)


def test_missing_dataset_is_named():
    with pytest.raises(ScenarioError, match=r"^dataset: required field is missing"):
        Scenario.model_validate({"name": "t"})


def test_steps_follow_what_the_scenario_names():
    s = _scenario(attacks=[BADNETS], defenses={"data": ["spectral"], "model": ["neural_cleanse"],
                                               "inference": ["strip"]}, retrain=True)
    assert s.steps_to_run() == ("poison", "train", "scan", "retrain", "inspect", "monitor")
    assert _scenario().steps_to_run() == ("train",)


def test_expand_is_the_product_in_a_stable_order():
    s = _scenario(attacks=[BADNETS], seeds=[0, 1], sweep={
        "attacks": [BADNETS, {"name": "blended", "params": {"poison_rate": 0.1}}],
        "detectors": ["spectral", "knn_label"],
        "params": {"attacks[0].params.poison_rate": [0.05, 0.1, 0.2]}})
    cells = expand(s)
    assert len(cells) == 2 * 2 * 3 * 2
    first = cells[0]
    assert first.seeds == [0] and first.sweep is None and cells[1].seeds == [1]
    assert first.attacks[0].name == "badnets" and first.attacks[0].params["poison_rate"] == 0.05
    assert [d.name for d in first.defenses.data] == ["spectral"]
    assert cells[-1].attacks[0].name == "blended" and cells[-1].attacks[0].params["poison_rate"] == 0.2
    assert len({config_hash(c.to_dict()) for c in cells}) == len(cells)
    assert [c.name for c in expand(s)] == [c.name for c in cells]  # deterministic


def test_set_path_copies_and_sets():
    data = {"attacks": [{"name": "a", "params": {}}]}
    out = set_path(data, "attacks[0].params.poison_rate", 0.3)
    assert out["attacks"][0]["params"] == {"poison_rate": 0.3} and data["attacks"][0]["params"] == {}
    with pytest.raises(ScenarioError, match="no item 3"):
        set_path(data, "attacks[3].params.x", 1)


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_load_yaml_and_json_files(tmp_path):
    (tmp_path / "s.yaml").write_text("name: y\ndataset: digits\nattacks:\n  - {name: badnets, params: {poison_rate: 0.1}}\n")
    (tmp_path / "s.json").write_text('{"name": "j", "dataset": "digits"}')
    assert load_scenario(tmp_path / "s.yaml").attacks[0].name == "badnets"
    assert load_scenario(tmp_path / "s.json").name == "j"


def test_relative_data_paths_resolve_beside_the_scenario(tmp_path):
    np.savez(tmp_path / "mine.npz", X=np.zeros((20, 4), np.float32), y=np.arange(20) % 2)
    (tmp_path / "s.yaml").write_text("dataset: {path: mine.npz, modality: tabular}\n")
    assert load_scenario(tmp_path / "s.yaml").dataset.path == str(tmp_path / "mine.npz")


@pytest.mark.parametrize("name, text, message", [
    ("bad.yaml", "dataset: [unclosed\n", r"invalid YAML at line"),
    ("bad.json", "{nope", r"invalid JSON at line 1"),
    ("list.yaml", "- 1\n- 2\n", r"a scenario is a mapping"),
    ("s.toml", "x = 1", r"ends in \.yaml, \.yml or \.json"),
])
def test_unreadable_files_give_one_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(tmp_path / name)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="is not a file"):
        load_scenario(tmp_path)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_loads(path):
    if path.name == "gate.yaml":  # the example release policy (poisonlab gate --policy)
        from poisonlab.runs.gate import load_policy

        assert load_policy(path).checks
        return
    scenario = load_scenario(path)
    assert expand(scenario)


def test_r1_example_is_the_reproductions_cell():
    from poisonlab.reproductions.r01_badnets_mnist import r1_scenario
    from poisonlab.runs.runner import cell_key

    example = load_scenario(EXAMPLES / "r01-badnets-mnist.yaml")
    for cell, seed in zip(expand(example), (0, 1, 2)):
        # the same computation (cache key); the reproduction only names it and stops after training
        ours = r1_scenario(seed).model_copy(update={"steps": None})
        assert cell_key(cell) == cell_key(ours)
