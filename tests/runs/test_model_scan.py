"""Model scan-and-repair (poisonlab.runs.model_scan): safe loading, Neural Cleanse, repairs."""

import pickle

import numpy as np
import pytest
import torch

from poisonlab.attacks.data import BadNets
from poisonlab.data import load_digits
from poisonlab.defenses.model import UnsafeModelError
from poisonlab.exceptions import AssumptionError, DataError, InvalidParameterError
from poisonlab.models import ModelSpec, TorchClassifier, TrainConfig, build_model, save_model, weights_sha256
from poisonlab.runs.events import EpochEnded, Note, StepFinished
from poisonlab.runs.model_scan import load_checked_model, load_classifier_for, repaired_path, scan_model

SPEC = ModelSpec((1, 8, 8), 10)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def backdoored(digits):
    atk = BadNets(target=3, poison_rate=0.1, value=1.0, random_state=0)
    res = atk.poison(digits.train.X, digits.train.y)
    clf = TorchClassifier(lambda s: build_model("cnn", s), config=TrainConfig(epochs=25, lr=3e-3, batch_size=64))
    return clf.fit(res.X, res.y).module_


def test_safetensors_with_a_card_load_by_the_card(tmp_path):
    module = build_model("mlp", ModelSpec((5,), 3), hidden=(7,))
    path = tmp_path / "m.safetensors"
    save_model(module, path, architecture="mlp", spec=ModelSpec((5,), 3), architecture_kwargs={"hidden": [7]})
    checked = load_checked_model(path)
    assert checked.architecture == "mlp" and checked.card.n_classes == 3 and checked.file_safety.safe
    assert weights_sha256(checked.module) == weights_sha256(module) and not checked.module.training
    with pytest.raises(DataError, match="says 3 classes; the data has 4"):
        load_checked_model(path, spec=ModelSpec((5,), 4))


def test_weights_without_a_card_take_the_modalitys_default(tmp_path):
    from safetensors.torch import save_file

    module = build_model("cnn", SPEC)
    path = tmp_path / "bare.safetensors"
    save_file(module.state_dict(), str(path))
    state = torch.random.get_rng_state()
    checked = load_checked_model(path, spec=SPEC, modality="image")
    assert checked.architecture == "cnn" and checked.card is None
    assert weights_sha256(checked.module) == weights_sha256(module)
    with pytest.raises(InvalidParameterError, match="give spec="):
        load_checked_model(path)
    with pytest.raises(InvalidParameterError, match="give architecture= or modality="):
        load_checked_model(path, spec=SPEC)
    with pytest.raises(DataError, match="do not fit architecture 'mlp'"):
        load_checked_model(path, spec=SPEC, architecture="mlp")
    assert torch.equal(torch.random.get_rng_state(), state), "loading leaves the global RNG alone"


def test_pickle_weights_are_scanned_then_loaded_weights_only(tmp_path):
    module = build_model("cnn", SPEC)
    path = tmp_path / "m.pt"
    torch.save(module.state_dict(), path)
    state = torch.random.get_rng_state()
    checked = load_checked_model(path, spec=SPEC, modality="image")
    assert checked.file_safety.format == "zip-pickle" and checked.file_safety.safe
    assert weights_sha256(checked.module) == weights_sha256(module)
    assert torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(DataError, match="do not fit architecture 'mlp'"):
        load_checked_model(path, spec=SPEC, architecture="mlp")


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/poisonlab_model_scan_pwned",))


def test_a_pickle_with_code_is_refused_with_its_report(tmp_path, digits):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(UnsafeModelError, match="DANGEROUS") as info:
        load_checked_model(evil, spec=SPEC, modality="image")
    assert not info.value.report.safe and info.value.report.dangerous
    with pytest.raises(UnsafeModelError):
        scan_model(evil, digits.test)
    with pytest.raises(UnsafeModelError, match="refused"):  # refused before anything else is asked
        load_checked_model(evil)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(UnsafeModelError, match="not a valid safetensors file"):
        load_checked_model(bad)
    import os

    assert not os.path.exists("/tmp/poisonlab_model_scan_pwned")


def test_load_classifier_for_reads_safetensors_only(tmp_path, digits):
    from safetensors.torch import save_file

    module = build_model("cnn", SPEC)
    path = tmp_path / "m.safetensors"
    save_file(module.state_dict(), str(path))
    clf = load_classifier_for(path, digits.test)
    assert clf.predict_proba(digits.test.X[:4]).shape == (4, 10)
    torch.save(module.state_dict(), tmp_path / "m.pt")
    with pytest.raises(InvalidParameterError, match="safetensors"):
        load_classifier_for(tmp_path / "m.pt", digits.test)


def test_scan_model_flags_the_target_and_repairs_a_copy(backdoored, digits):
    before = weights_sha256(backdoored)
    seen = []
    r = scan_model(backdoored, digits.test, train=digits.train, n_clean=200, epochs=100, repair="prune",
                   emit=seen.append)
    assert r.flagged == [3] and r.report["flagged_classes"] == [3] and "backdoor suspected" in r.verdict
    assert r.report["repair"]["method"] == "fine-pruning" and r.report["file_safety"] is None
    assert r.repaired is not None and weights_sha256(r.repaired) != before
    assert weights_sha256(backdoored) == before, "the scanned model is never changed"
    assert [e.epoch for e in seen if isinstance(e, EpochEnded)][:2] == [1, 2]
    assert [e.step for e in seen if isinstance(e, StepFinished)] == ["neural cleanse", "repair"]
    assert r.detector.masks_.shape[0] == 10 and len(r.report["l1_norms"]) == 10


def test_scan_model_reports_file_safety_from_a_path(tmp_path, backdoored, digits):
    path = tmp_path / "bd.safetensors"
    save_model(backdoored, path, architecture="cnn", spec=SPEC)
    seen = []
    r = scan_model(path, digits.test, n_clean=100, epochs=2, emit=seen.append)
    assert r.report["model"] == str(path) and r.report["file_safety"]["safe"] and r.repaired is None
    assert any(isinstance(e, Note) and e.text.startswith("file safety:") for e in seen)
    assert r.checked.card is not None


def test_scan_model_refuses_bad_requests(digits):
    module = build_model("cnn", SPEC)
    with pytest.raises(InvalidParameterError, match="repair must be one of"):
        scan_model(module, digits.test, repair="burn")
    with pytest.raises(InvalidParameterError, match="train="):
        scan_model(module, digits.test, repair="unlearn")
    from poisonlab.data import Dataset

    table = Dataset(X=np.zeros((20, 5), np.float32), y=np.arange(20) % 2, classes=("a", "b"), modality="tabular",
                    ids=np.array([f"r{i}" for i in range(20)]), name="rows")
    with pytest.raises(AssumptionError, match="image triggers; this dataset is tabular"):
        scan_model(module, table)


def test_repairs_go_beside_the_original_never_over_it(tmp_path):
    assert repaired_path(tmp_path / "m.safetensors", "prune") == tmp_path / "m.repaired-prune.safetensors"
    with pytest.raises(DataError, match="over the original"):
        repaired_path(tmp_path / "m.repaired-unlearn.safetensors", "unlearn")
