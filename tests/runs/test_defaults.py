"""Defaults that fit together: every registered data-poisoning attack runs from a scenario with
its modality's default data and default architecture, through the runner, and gives a result.

Each attack runs on every modality it declares, with the model the runner picks when the
scenario names none, 1 epoch, and only what the scenario conventions of docs/runs.md supply
(the clean model as surrogate, the test split as the attacker's validation set, a target input
chosen by seed, groups from a dataset column). Crafting attacks get small step budgets.
Default data per modality: digits (images), the first 600 training texts of SMS Spam, the first
1,500 training rows of Adult, and a tiny synthetic FSDD folder (waveforms, read by the FSDD
loader) in place of the 3,000 real recordings.
"""

import wave

import numpy as np
import pytest

from poisonlab import registry
from poisonlab.exceptions import InvalidParameterError, PoisonlabError
from poisonlab.models.architectures import default_architecture_for
from poisonlab.runs import Runner, Scenario
from poisonlab.runs.steps import default_architecture, group_column, target_input_index

#: Step budgets for the attacks that craft by optimisation (their defaults take minutes).
FAST = {
    "feature_collision": {"steps": 5},
    "gradient_matching": {"steps": 2},
    "label_consistent": {"steps": 3},
    "svm_poisoning": {"max_iter": 3},
    "adversarial_label_flip": {"n_poison": 3, "max_candidates": 10},
}
#: What a scenario must say for an attack on a modality's default data (the convention's input).
NEEDED = {("subgroup_label_flip", "tabular"): {"subgroup": "sex=Female"}}
#: Attack x modality pairs the default data cannot serve: what the refusal says (tested).
UNSERVED = {("subgroup_label_flip", "image"): "no per-sample group column",     # digits
            ("subgroup_label_flip", "text"): "no per-sample group column",      # SMS Spam
            ("adversarial_label_flip", "image"): "binary task",                 # 10 digits
            ("adversarial_label_flip", "audio"): "binary task",
            ("svm_poisoning", "image"): "binary task"}


def _data_attacks():
    return [(e.name, m) for e in registry.entries("attack", stage="data") for m in e.modalities]


def _write_wav(path, rate, wave_float):
    pcm = (np.clip(wave_float, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


@pytest.fixture(scope="module")
def tiny_fsdd(tmp_path_factory):
    """10 digits x 2 speakers x 10 takes of 0.25 s, a tone per digit (takes 5-9: training)."""
    root = tmp_path_factory.mktemp("fsdd-root")
    folder = root / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    t = np.arange(2000) / 8000
    for d in range(10):
        for s, speaker in enumerate(("amy", "bob")):
            for take in range(10):
                _write_wav(folder / f"{d}_{speaker}_{take}.wav", 8000,
                           0.3 * np.sin(2 * np.pi * (300 + 150 * d + 20 * s) * t + take))
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # clean models shared by the cells of a modality


def _dataset(modality, tiny_fsdd):
    return {"image": {"name": "digits"},
            "text": {"name": "sms-spam", "train_size": 600},
            "tabular": {"name": "adult", "train_size": 1500},
            "audio": {"name": "fsdd", "data_dir": str(tiny_fsdd)}}[modality]


@pytest.mark.parametrize("attack,modality", _data_attacks(), ids=lambda v: v)
def test_every_data_attack_runs_with_its_modality_defaults(attack, modality, data_dir, tiny_fsdd, cache_dir):
    params = {**FAST.get(attack, {}), **NEEDED.get((attack, modality), {})}
    scenario = Scenario.model_validate({
        "name": f"defaults-{attack}-{modality}", "dataset": _dataset(modality, tiny_fsdd),
        "model": {"train": {"epochs": 1, "batch_size": 64}},   # no architecture: the default
        "attacks": [{"name": attack, "params": params}], "seeds": [0]})
    if (attack, modality) in UNSERVED:
        with pytest.raises(PoisonlabError, match=UNSERVED[attack, modality]):
            Runner(data_dir=data_dir, cache_dir=cache_dir).run(scenario)
        return
    record = Runner(data_dir=data_dir, cache_dir=cache_dir).run(scenario)
    res = record["results"]
    assert res["data"]["modality"] == modality
    assert res["poison"]["n_poison"] >= 1
    poisoned, clean = res["train"]["poisoned"], res["train"]["clean"]
    assert 0.0 <= poisoned["clean_accuracy"] <= 1.0 and 0.0 <= clean["clean_accuracy"] <= 1.0
    cls = registry.get("attack", attack)
    if hasattr(cls, "apply_trigger"):  # every ASR beside the clean model's on the same inputs
        assert 0.0 <= poisoned["attack_success_rate"] <= 1.0
        assert poisoned["clean_model_asr"] == clean["attack_success_rate"]
    if "target_input" in cls.needs:
        facts = res["poison"]["attacks"][0]["target_input"]
        assert facts["true_class"] != res["poison"]["attacks"][0]["target"]
        assert isinstance(poisoned["target_hit"], bool)
        assert poisoned["clean_model_target_hit"] == clean["target_hit"]
    if "groups" in cls.needs:
        assert res["poison"]["attacks"][0]["groups"]["column"] == ("sex" if modality == "tabular" else "contributor")


def test_waveforms_get_the_waveform_model_and_spectrograms_the_audio_cnn():
    waves, mels = np.zeros((3, 8000), np.float32), np.zeros((3, 1, 32, 32), np.float32)
    assert default_architecture({}, "audio", waves) == default_architecture_for("audio", waves) == "audio-wave-cnn"
    assert default_architecture({}, "audio", mels) == "audio-cnn"
    assert default_architecture({"architecture": "mlp"}, "audio", waves) == "mlp"
    assert default_architecture({"callable": "m:f"}, "audio", waves) is None
    with pytest.raises(InvalidParameterError, match="modality"):
        default_architecture_for("video")


def test_run_backdoor_on_waveforms_with_the_defaults(tiny_fsdd):
    """The library path (evaluation.experiment.run_backdoor) picks the waveform model too:
    AudioTrigger on FSDD waveforms with no architecture used to fail with
    'input_shape must be (C, H, W); got (8000,)'."""
    from poisonlab.attacks.data import AudioTrigger
    from poisonlab.data import load_fsdd
    from poisonlab.evaluation.experiment import run_backdoor
    from poisonlab.models import TrainConfig

    sp = load_fsdd(tiny_fsdd, features="waveform")
    out = run_backdoor(sp.train, sp.test, AudioTrigger(target=0, poison_rate=0.2, random_state=0),
                       config=TrainConfig(epochs=1, seed=0))
    assert out["architecture"] == "audio-wave-cnn"
    assert 0.0 <= out["poisoned"]["attack_success_rate"] <= 1.0
    assert 0.0 <= out["clean"]["attack_success_rate"] <= 1.0


def test_target_input_convention_is_seeded_and_avoids_the_attack_class():
    y = np.array([0, 0, 1, 2, 1, 2, 3])
    picks = {target_input_index(y, 0, seed) for seed in range(20)}
    assert picks <= {2, 3, 6} and len(picks) > 1            # first input of a class other than 0
    assert target_input_index(y, 0, 5) == target_input_index(y, 0, 5)
    with pytest.raises(InvalidParameterError, match="no input outside class 1"):
        target_input_index(np.array([1, 1]), 1, 0)


def test_group_convention_names_the_column_or_refuses():
    from poisonlab.data import Dataset

    ds = Dataset(X=np.zeros((6, 2)), y=np.array([0, 1] * 3), classes=("a", "b"), modality="tabular",
                 ids=np.arange(6), name="t",
                 metadata={"site": np.array(["x", "x", "y", "y", "z", "z"]),
                           "team": np.array(["x", "q", "q", "q", "q", "q"]),
                           "uid": np.arange(6).astype(str), "src": np.array(["f"] * 6)})
    name, g = group_column(ds, "site=y")
    assert name == "site" and list(g[:3]) == ["site=x", "site=x", "site=y"]
    assert group_column(ds, "z")[0] == "site"               # a value held by one column
    with pytest.raises(InvalidParameterError, match="several columns"):
        group_column(ds, "x")                               # held by site and team
    with pytest.raises(InvalidParameterError, match="several group columns"):
        group_column(ds, None)                              # uid (one per sample) and src (constant) do not count
    with pytest.raises(InvalidParameterError, match="not a group column"):
        group_column(ds, "uid=3")
