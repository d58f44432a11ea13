"""R1 on the run layer: its scenario is the old setting, its models are trained once and
shared through the cache folder (R11-R13 get R1's models without training), with digits-sized
stand-ins for MNIST and the network."""

from types import MappingProxyType

import numpy as np
import pytest

import poisonlab.data
from poisonlab.models.adapters import TorchClassifier
from poisonlab.reproductions import common, r01_badnets_mnist, run_reproduction
from poisonlab.reproductions.common import RunContext


@pytest.fixture
def stand_in(monkeypatch):
    """MNIST -> digits (600 training images; the rest are the held-out split), R1's CNN -> an
    MLP trained 1 epoch, 30 poisons; every TorchClassifier.fit counted."""
    monkeypatch.setattr(common, "MNIST_DATASET", MappingProxyType({"name": "digits", "train_size": 600}))
    monkeypatch.setattr(common, "MNIST_ARCHITECTURE", "mlp")
    monkeypatch.setattr(r01_badnets_mnist, "EPOCHS", 1)
    monkeypatch.setattr(r01_badnets_mnist, "BADNETS", MappingProxyType({**r01_badnets_mnist.BADNETS, "n_poison": 30}))
    monkeypatch.setattr(poisonlab.data, "load_mnist", lambda root=None, **kw: poisonlab.data.load_digits())
    fits = []
    real_fit = TorchClassifier.fit

    def counting_fit(self, X, y, **kw):
        fits.append(len(X))
        return real_fit(self, X, y, **kw)

    monkeypatch.setattr(TorchClassifier, "fit", counting_fit)
    return fits


def _ctx(cache_dir, emit=None):
    return RunContext(data_dir=None, cache_dir=cache_dir, emit=emit or (lambda e: None), threads=1)


def test_r1_scenario_is_the_old_setting():
    """The attack and the training R1 had before the run layer (``_badnets_mnist(seed)`` and
    ``_r1_config(seed)``), so the models are the same as before."""
    from poisonlab.attacks.data import BadNets
    from poisonlab.models.training import TrainConfig
    from poisonlab.runs.steps import _seeded, make_classifier

    for seed in (0, 2):
        s = r01_badnets_mnist.r1_scenario(seed, threads=1)
        assert s.dataset.name == "mnist" and s.dataset.train_size == 50_000 and s.seeds == [seed]
        assert s.model.architecture == "strip-mnist-cnn" and s.clean_baseline
        comp = s.attacks[0]
        atk = BadNets(**_seeded(comp.params, BadNets, seed))
        old = BadNets(target=7, n_poison=600, patch_size=3, location="bottom-right", pattern="square",
                      value=1.0, random_state=seed)
        assert comp.name == "badnets" and atk.get_params() == old.get_params()
        X = np.zeros((2, 1, 28, 28), np.float32)
        clf = make_classifier(s.model.model_dump(), "image", X, seed)
        assert clf.config == TrainConfig(epochs=20, batch_size=128, lr=1e-3, optimizer="adam", seed=seed)


def test_r11_r12_get_r1s_models_from_the_cache_without_training(stand_in, tmp_path):
    cache = tmp_path / "cache"
    first = r01_badnets_mnist.r1_cell(0, _ctx(cache), clean=False)  # R11 alone: the poisoned model
    assert len(stand_in) == 1
    both = r01_badnets_mnist.r1_cell(0, _ctx(cache), clean=True)  # R12: the clean model is new
    assert len(stand_in) == 2
    again = r01_badnets_mnist.r1_cell(0, _ctx(cache), clean=True)  # R13 after them: nothing trains
    assert len(stand_in) == 2
    w = [c.results["train"]["poisoned"]["weights_sha256"] for c in (first, both, again)]
    assert w[0] == w[1] == w[2]
    assert both.results["train"]["clean"]["weights_sha256"] == again.results["train"]["clean"]["weights_sha256"]
    x = again.splits.test.X[:50]
    assert np.array_equal(first.models["poisoned"].predict_proba(x), again.models["poisoned"].predict_proba(x))
    other = r01_badnets_mnist.r1_cell(1, _ctx(cache), clean=False)  # another seed is another model
    assert len(stand_in) == 3 and other.results["train"]["poisoned"]["weights_sha256"] != w[0]


def test_r1_record_on_the_stand_in_and_its_models_reused_by_the_next_run(stand_in, tmp_path):
    events = []
    rec = run_reproduction("R1", seeds=1, cache_dir=tmp_path, emit=events.append, threads=1)
    assert len(stand_in) == 2, "R1 trains the poisoned and the clean model"
    seed0 = rec["per_seed"][0]
    assert seed0["attack"]["name"] == "BadNets" and seed0["attack"]["n_poison"] == 30
    assert seed0["train_config"]["epochs"] == 1 and seed0["train_config"]["seed"] == 0
    for label in ("poisoned", "clean"):
        m = seed0[label]
        assert {"clean_accuracy", "attack_success_rate", "per_class_accuracy", "confusion_matrix",
                "train_seconds", "epochs_run", "validation_accuracy"} <= set(m)
        assert 0.0 <= m["validation_accuracy"] <= 1.0 and m["epochs_run"] == 1
    assert rec["scenario"]["cells"][0]["attacks"][0]["name"] == "badnets"
    assert any(e.kind == "EpochEnded" and "R1 seed=0" in e.label for e in events), "training bars are events"
    again = run_reproduction("R1", seeds=1, cache_dir=tmp_path, threads=1)
    assert len(stand_in) == 2, "a second run with the same cache folder trains nothing"
    assert again["per_seed"][0]["poisoned"]["attack_success_rate"] == seed0["poisoned"]["attack_success_rate"]
    assert again["fingerprint"] == rec["fingerprint"]


def test_r2_cells_are_cached_too(stand_in, tmp_path, monkeypatch):
    from poisonlab.reproductions import r02_badnets_rate_sweep as r2

    monkeypatch.setattr(r2, "R2_RATES", (0.05, 0.10))
    out = r2.run(0, _ctx(tmp_path))
    assert len(stand_in) == 2 and [v["n_poison"] for v in out["rates"].values()] == [30, 60]
    r2.run(0, _ctx(tmp_path))
    assert len(stand_in) == 2
