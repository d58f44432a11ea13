"""The one registry: kinds, entries with stage and unit, filters, lazy loading, errors."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from poisonlab import BaseDetector, InvalidParameterError, registry
from poisonlab.registry import KINDS, MODALITIES, STAGES, UNITS, Entry

SRC = Path(registry.__file__).resolve().parent

#: The stage each folder of the tree stands for (DESIGN.md: the tree shows the pipeline).
STAGE_OF_FOLDER = {"attacks.data": "data", "attacks.training": "training", "attacks.federated": "federated",
                   "defenses.data": "data", "defenses.training": "training", "defenses.model": "model",
                   "defenses.inference": "inference", "defenses.federated": "federated"}


@pytest.fixture
def scratch(monkeypatch):
    """A private copy of the registry (built-ins loaded) that a test may register into."""
    for kind in KINDS:
        registry.available(kind)
    monkeypatch.setattr(registry, "_REGISTRY", {k: dict(v) for k, v in registry._REGISTRY.items()})
    return registry


def test_every_kind_exists_and_has_built_ins():
    assert KINDS == ("attack", "detector", "trainer", "aggregator", "dataset", "architecture", "reproduction")
    for kind in KINDS:
        assert registry.available(kind), f"no built-in {kind}"
    assert {e.stage for e in registry.entries("trainer")} == {"training"}


@pytest.mark.parametrize("kind", ["attack", "detector", "aggregator"])
def test_class_entries_carry_the_stage_of_their_folder(kind):
    for e in registry.entries(kind):
        folder = ".".join(e.obj.__module__.split(".")[1:3])
        assert e.stage == STAGE_OF_FOLDER[folder], f"{e.name}: stage {e.stage!r} but it lives in {folder}"
        assert e.stage in STAGES and e.unit in UNITS and set(e.modalities) <= set(MODALITIES)
        assert e.summary and "\n" not in e.summary
        assert e.obj.registry_name == e.name


def test_stage_and_unit_per_entry():
    det = {e.name: e for e in registry.entries("detector")}
    assert (det["strip"].stage, det["strip"].unit) == ("inference", "input")
    assert (det["neural_cleanse"].stage, det["neural_cleanse"].unit) == ("model", "class")
    assert (det["spectral"].stage, det["spectral"].unit) == ("data", "sample")
    agg = registry.entries("aggregator")
    assert {(e.stage, e.unit) for e in agg} == {("federated", "client")} and all(e.modalities == () for e in agg)
    atk = {e.name: e for e in registry.entries("attack")}
    assert atk["validation_poisoning"].stage == "training" and atk["badnets"].stage == "data"
    assert atk["badnets"].summary.startswith("BadNets patch backdoor")


def test_a_data_scan_can_ask_for_sample_level_detectors_only():
    names = [e.name for e in registry.entries("detector", stage="data", unit="sample")]
    assert {"spectral", "spectre", "knn_label", "activation_clustering", "label_issues"} <= set(names)
    assert "strip" not in names and "neural_cleanse" not in names
    assert [e.name for e in registry.entries("detector", stage="inference")] == ["strip"]
    assert [e.name for e in registry.entries("detector", unit="class")] == ["neural_cleanse"]
    assert all(isinstance(e, Entry) and issubclass(e.obj, BaseDetector) for e in registry.entries("detector"))


def test_modality_filter():
    text_attacks = {e.name for e in registry.entries("attack", modality="text")}
    assert {"badword", "addsent", "badchar"} <= text_attacks and "badnets" not in text_attacks
    assert "neural_cleanse" not in {e.name for e in registry.entries("detector", modality="text")}
    # aggregators do not depend on the data's modality
    assert {e.name for e in registry.entries("aggregator", modality="audio")} == set(registry.available("aggregator"))
    assert {"fedavg", "median", "krum", "fltrust"} <= set(registry.available("aggregator"))


def test_datasets_come_from_the_data_package():
    from poisonlab.data import DATASETS

    assert set(registry.available("dataset")) == set(DATASETS)
    digits = registry.entry("dataset", "digits")
    assert digits.obj is DATASETS["digits"][0]
    assert digits.meta["needs_files"] is False and digits.modalities == ("image",) and digits.stage is None
    assert registry.entry("dataset", "sst2").meta["needs_files"] is True
    assert {e.name for e in registry.entries("dataset", modality="audio")} == {"fsdd"}


def test_architectures_come_from_the_models_package():
    from poisonlab.models.architectures import ARCHITECTURES

    assert set(registry.available("architecture")) == set(ARCHITECTURES)
    assert registry.get("architecture", "cnn") is ARCHITECTURES["cnn"]
    text = {e.name for e in registry.entries("architecture", modality="text")}
    assert text == {n for n in ARCHITECTURES if n.startswith("text-")}
    assert all(e.summary for e in registry.entries("architecture"))


def test_reproductions_carry_their_title_paper_and_target():
    r1 = registry.entry("reproduction", "R1")
    assert r1.summary == r1.meta["title"] == r1.obj.title
    assert r1.meta["paper"] == r1.obj.paper and r1.meta["target"] == r1.obj.target
    assert {"R1", "R14", "R19"} <= set(registry.available("reproduction"))


def test_entries_without_kind_spans_every_kind():
    kinds = {e.kind for e in registry.entries()}
    assert kinds == set(KINDS)


def test_unknown_names_and_kinds_list_what_is_available():
    with pytest.raises(InvalidParameterError, match=r"unknown detector 'nope'; available: \[.*'spectral'"):
        registry.get("detector", "nope")
    with pytest.raises(InvalidParameterError, match=r"unknown dataset 'imagenet'; available: \[.*'digits'"):
        registry.get("dataset", "imagenet")
    with pytest.raises(InvalidParameterError, match="kind must be one of"):
        registry.available("model")
    with pytest.raises(InvalidParameterError, match="stage must be one of"):
        registry.entries("detector", stage="deployment")
    with pytest.raises(InvalidParameterError, match="valid parameters"):
        registry.create("detector", "spectral", bogus=1)
    assert registry.create("detector", "spectral", n_components=2).n_components == 2


def test_register_takes_stage_and_unit_from_the_class_or_overrides(scratch):
    @scratch.register("detector", "toy-inference")
    class Toy(BaseDetector):
        """A toy.

        More text."""

        stage = "inference"
        unit = "input"

        def fit(self, X):
            return self

    e = scratch.entry("detector", "toy-inference")
    assert (e.stage, e.unit, e.summary) == ("inference", "input", "A toy.")

    @scratch.register("trainer", "toy-trainer", stage="training", unit="model")
    class ToyTrainer:
        """Trains."""

    assert scratch.entry("trainer", "toy-trainer").stage == "training"
    assert "toy-trainer" in scratch.available("trainer")
    with pytest.raises(InvalidParameterError, match="already registered to .*Toy"):
        scratch.register("detector", "toy-inference")(ToyTrainer)
    with pytest.raises(InvalidParameterError, match="unit must be one of"):
        scratch.register("detector", "x", unit="pixel")
    with pytest.raises(InvalidParameterError, match="use register_object"):
        scratch.register("dataset", "x")


def test_register_object_keeps_meta(scratch):
    def load_toy():
        """Two toy samples."""

    e = scratch.register_object("dataset", "toy", load_toy, modalities=("tabular",), needs_files=False)
    assert scratch.get("dataset", "toy") is load_toy
    assert e.summary == "Two toy samples." and e.meta["needs_files"] is False
    with pytest.raises(TypeError):
        e.meta["needs_files"] = True  # entries are read-only
    with pytest.raises(InvalidParameterError, match="stage must be one of"):
        scratch.register_object("dataset", "bad", load_toy, stage="somewhere")


def test_importing_poisonlab_stays_light():
    code = ("import sys, poisonlab, poisonlab.registry; "
            "heavy = [m for m in sys.modules if m == 'torch' or m.startswith(('poisonlab.attacks', "
            "'poisonlab.defenses', 'poisonlab.models', 'poisonlab.evaluation', 'poisonlab.data'))]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registry_imports_no_higher_layer_at_import_time():
    tree = ast.parse((SRC / "registry.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    local = [n.module for n in top if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert local == ["exceptions"]
    assert all(n.level == 0 and n.module.split(".")[0] in ("__future__", "importlib", "inspect", "dataclasses",
                                                           "types", "typing")
               for n in top if isinstance(n, ast.ImportFrom) and n.level == 0)
