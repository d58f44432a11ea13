"""save_model / load_model / load_classifier: safetensors weights plus a model card, and every
bad file refused with a one-line error of a named class."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from poisonlab import ChecksumError, DataError, InvalidParameterError, __version__
from poisonlab.models import (
    ModelCard,
    ModelSpec,
    TorchClassifier,
    TrainConfig,
    card_path,
    load_classifier,
    load_model,
    model_factory,
    read_card,
    save_model,
    text_pipeline,
    weights_sha256,
)
from poisonlab.models.architectures import ConvNet

SPEC = ModelSpec((1, 8, 8), 3)
DATA_SHA = "ab" * 32


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(60, 1, 8, 8)).astype(np.float32)
    y = np.arange(60) % 3
    cfg = TrainConfig(epochs=1, batch_size=32, seed=4)
    clf = TorchClassifier(model_factory("cnn", "image", widths=(4, 8), hidden=16), config=cfg).fit(X, y)
    return clf, X, y, cfg


def _save(clf, path, cfg=None, **kw):
    return save_model(clf.module_, path, architecture="cnn", spec=SPEC, config=cfg,
                      architecture_kwargs={"widths": (4, 8), "hidden": 16}, **kw)


def _one_line_error(excinfo, cls):
    assert excinfo.type is cls or issubclass(excinfo.type, cls)
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


def test_round_trip_gives_identical_predictions_and_fingerprint(trained, tmp_path):
    clf, X, y, cfg = trained
    path = tmp_path / "sub" / "model.safetensors"
    card = _save(clf, path, cfg, data_sha256=DATA_SHA, n_samples=60, modality="image",
                 class_names=["a", "b", "c"], metrics={"clean_accuracy": 0.5, "attack_success_rate": float("nan")},
                 extra={"run": "r1", "attack": {"name": "BadNets"}})
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.card.json", "model.safetensors"]
    module, loaded_card = load_model(path)
    assert isinstance(module, ConvNet) and not module.training
    assert weights_sha256(module) == weights_sha256(clf.module_) == card.weights_sha256
    assert loaded_card == card
    again = load_classifier(path)
    assert np.array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert np.array_equal(again.embed(X), clf.embed(X))
    assert again.n_classes_ == 3
    # the weights file holds the tensors and nothing else: no pickle anywhere
    assert path.read_bytes()[8:9] == b"{"


def test_card_fields(trained, tmp_path):
    clf, X, y, cfg = trained
    path = tmp_path / "m.safetensors"
    _save(clf, path, cfg, data_sha256=DATA_SHA, n_samples=60, modality="image", class_names=("a", "b", "c"),
          metrics={"clean_accuracy": np.float64(0.75), "attack_success_rate": float("inf")}, extra={"note": (1, 2)})
    raw = json.loads(card_path(path).read_text())
    assert raw["card_version"] == 1 and list(raw)[0] == "card_version"
    assert raw["architecture"] == "cnn" and raw["input_shape"] == [1, 8, 8] and raw["n_classes"] == 3
    assert raw["vocab_size"] is None and raw["modality"] == "image" and raw["class_names"] == ["a", "b", "c"]
    assert raw["architecture_kwargs"] == {"widths": [4, 8], "hidden": 16}
    assert raw["train_config"] == cfg.to_dict()
    assert raw["data_sha256"] == DATA_SHA and raw["n_samples"] == 60
    assert raw["metrics"] == {"clean_accuracy": 0.75, "attack_success_rate": None}
    assert raw["weights_sha256"] == weights_sha256(clf.module_)
    assert raw["poisonlab_version"] == __version__ and raw["created"].endswith("+00:00")
    assert raw["extra"] == {"note": [1, 2]}
    card = read_card(path)
    assert card.spec == SPEC and card.class_names == ("a", "b", "c")
    assert ModelCard.from_dict(card.to_dict()) == card
    assert read_card(tmp_path / "none.safetensors") is None


def test_card_is_named_beside_the_weights_and_never_collides_with_a_users_json(trained, tmp_path):
    clf, *_ = trained
    mine = tmp_path / "model.json"
    mine.write_text('{"mine": true}')
    _save(clf, tmp_path / "model.safetensors")
    assert json.loads(mine.read_text()) == {"mine": True}
    assert card_path(tmp_path / "a.b.safetensors").name == "a.b.card.json"


def test_weights_without_card_need_architecture_and_spec(trained, tmp_path):
    clf, X, *_ = trained
    path = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in clf.module_.state_dict().items()}, str(path))
    with pytest.raises(InvalidParameterError) as err:
        load_model(path)
    assert "no model card" in _one_line_error(err, InvalidParameterError)
    factory = model_factory("cnn", "image", widths=(4, 8), hidden=16)
    module, card = load_model(path, architecture=factory, spec=SPEC)
    assert card is None and weights_sha256(module) == weights_sha256(clf.module_)
    # a registered name without its keyword arguments does not fit: the first bad key is named
    with pytest.raises(DataError) as err:
        load_model(path, architecture="cnn", spec=SPEC)
    assert "'conv1.weight' has shape (4, 1, 3, 3) in the weights, (32, 1, 3, 3) in the model" in _one_line_error(err, DataError)


def test_text_model_round_trip_keeps_its_vocabulary(tmp_path):
    texts = np.array(["free prize now", "see you at lunch", "win a free prize", "lunch at noon?"] * 5)
    y = np.array([1, 0, 1, 0] * 5)
    clf = text_pipeline("text-bag", seed=0, epochs=1).fit(texts, y)
    vocab = clf.vocabulary_
    path = tmp_path / "text.safetensors"
    card = save_model(clf.module_, path, architecture="text-bag",
                      spec=ModelSpec((vocab.max_length,), 2, vocab.vocab_size), vocabulary=vocab, modality="text")
    assert card.vocabulary["tokens"] == list(vocab.tokens_)
    again = load_classifier(path)
    assert np.array_equal(again.predict_proba(texts), clf.predict_proba(texts))
    assert again.vocabulary_.index_ == vocab.index_


# --- bad files ---------------------------------------------------------------------------------

def test_wrong_suffix_missing_file_and_directory(trained, tmp_path):
    clf, *_ = trained
    for call in (lambda: load_model(tmp_path / "model.pt"), lambda: _save(clf, tmp_path / "model.pt")):
        with pytest.raises(InvalidParameterError) as err:
            call()
        assert "must end in .safetensors" in _one_line_error(err, InvalidParameterError)
    with pytest.raises(DataError) as err:
        load_model(tmp_path / "absent.safetensors")
    assert "does not exist" in _one_line_error(err, DataError)
    folder = tmp_path / "dir.safetensors"
    folder.mkdir()
    with pytest.raises(DataError) as err:
        load_model(folder)
    assert "is a directory" in _one_line_error(err, DataError)
    with pytest.raises(InvalidParameterError, match="is a directory"):
        _save(clf, folder)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "pickle"])
def test_corrupt_or_truncated_weights(trained, tmp_path, damage):
    clf, *_ = trained
    path = tmp_path / "model.safetensors"
    _save(clf, path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[:-100], "garbage": b"\x00" * 64 + data[64:], "empty": b"",
                      "pickle": b"\x80\x04\x95" + b"x" * 40}[damage])
    with pytest.raises(DataError) as err:
        load_model(path)
    assert "not a valid safetensors file (corrupt or truncated)" in _one_line_error(err, DataError)


def test_weights_that_do_not_fit_the_architecture_name_the_first_bad_key(trained, tmp_path):
    clf, *_ = trained
    path = tmp_path / "model.safetensors"
    _save(clf, path)
    state = {k: v.contiguous() for k, v in clf.module_.state_dict().items()}
    for change, want in [
        (lambda s: s.pop("classifier.bias"), "'classifier.bias' is missing from the weights"),
        (lambda s: s.update({"zzz.extra": torch.zeros(1)}), "'zzz.extra' is not a weight of the model"),
        (lambda s: s.update({"conv2.weight": torch.zeros(8, 4, 5, 5)}), "'conv2.weight' has shape (8, 4, 5, 5)"),
        (lambda s: s.update({"classifier.bias": s["classifier.bias"].double()}), "'classifier.bias' is torch.float64"),
    ]:
        bad = dict(state)
        change(bad)
        save_file(bad, str(path))
        with pytest.raises(DataError) as err:
            load_model(path)
        msg = _one_line_error(err, DataError)
        assert "do not fit architecture 'cnn'" in msg and want in msg


def test_weights_changed_after_saving_are_refused(trained, tmp_path):
    clf, *_ = trained
    path = tmp_path / "model.safetensors"
    _save(clf, path)
    state = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    state["classifier.bias"][0] += 1.0
    save_file(state, str(path))
    with pytest.raises(ChecksumError) as err:
        load_model(path)
    assert "changed after it was saved" in _one_line_error(err, ChecksumError)


@pytest.mark.parametrize("text, want", [
    ('{"card_version": 1, "architecture": "cnn",', "is not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"card_version": 7}', "version 7 is not supported"),
    ('{"card_version": 1, "architecture": "cnn"}', "field 'input_shape' is missing"),
    ('{"card_version": 1, "architecture": "cnn", "input_shape": [1, 8, 8], "n_classes": "3", '
     '"weights_sha256": "' + "0" * 64 + '"}', "field 'n_classes' must be an int >= 1; got '3'"),
])
def test_corrupt_card(trained, tmp_path, text, want):
    clf, *_ = trained
    path = tmp_path / "model.safetensors"
    _save(clf, path)
    card_path(path).write_text(text)
    with pytest.raises(DataError) as err:
        load_model(path)
    msg = _one_line_error(err, DataError)
    assert want in msg and "model.card.json" in msg


@pytest.mark.parametrize("kwargs, want", [
    ({"module": "not a module"}, "module must be a torch nn.Module"),
    ({"architecture": ""}, "architecture must be a non-empty str"),
    ({"spec": (1, 8, 8)}, "spec must be a ModelSpec"),
    ({"spec": ModelSpec((1, 8, 8), 4)}, "module does not fit architecture 'cnn'"),
    ({"architecture_kwargs": {}}, "'conv1.weight' has shape (4, 1, 3, 3)"),
    ({"data_sha256": "abc"}, "data_sha256 must be 64 lowercase hex digits"),
    ({"n_samples": -1}, "n_samples must be an int >= 0"),
    ({"class_names": ["a"]}, "class_names must name the 3 classes; got 1"),
    ({"metrics": {"clean_accuracy": "high"}}, "metrics['clean_accuracy'] must be a number"),
    ({"extra": {"f": object()}}, "extra must be JSON-serialisable"),
    ({"config": 3}, "config must be a TrainConfig or a dict"),
])
def test_save_refuses_bad_arguments_before_writing(trained, tmp_path, kwargs, want):
    clf, *_ = trained
    args = {"module": clf.module_, "architecture": "cnn", "spec": SPEC,
            "architecture_kwargs": {"widths": [4, 8], "hidden": 16}, **kwargs}
    path = tmp_path / "model.safetensors"
    with pytest.raises(InvalidParameterError) as err:
        save_model(args.pop("module"), path, **args)
    assert want in _one_line_error(err, InvalidParameterError)
    assert list(tmp_path.iterdir()) == []


def test_weights_sha256_is_order_independent_and_sees_dtype_shape_and_names():
    a = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(2)}
    b = {"b": torch.zeros(2), "w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    h = weights_sha256(a)
    assert h == weights_sha256(b) and len(h) == 64
    assert h != weights_sha256({**a, "w": a["w"].reshape(3, 2)})
    assert h != weights_sha256({**a, "w": a["w"].double()})
    assert h != weights_sha256({"v": a["w"], "b": a["b"]})
    assert h == weights_sha256({**a, "w": a["w"].t().contiguous().t()})  # a non-contiguous view, same values
    with pytest.raises(InvalidParameterError, match="nn.Module or a state dict"):
        weights_sha256([1, 2])
