"""model_factory: a named architecture (or the modality's default) as a ModelSpec -> module factory."""

import pickle

import pytest

from poisonlab import InvalidParameterError
from poisonlab.models import ARCHITECTURES, MLP, ConvNet, ModelSpec, TextBag, model_factory


def test_default_per_modality_and_keyword_arguments():
    assert isinstance(model_factory(None, "tabular")(ModelSpec((5,), 2)), MLP)
    assert isinstance(model_factory(None, "image")(ModelSpec((1, 8, 8), 3)), ConvNet)
    assert isinstance(model_factory(None, "text")(ModelSpec((12,), 2, vocab_size=40)), TextBag)
    mlp = model_factory("mlp", "image", hidden=(7,))(ModelSpec((1, 4, 4), 3))
    assert mlp.classifier.in_features == 7 and mlp.classifier.out_features == 3


def test_unknown_architecture_lists_the_available_ones_at_once():
    with pytest.raises(InvalidParameterError, match=r"unknown architecture 'resnet'; available: \[") as err:
        model_factory("resnet", "image")
    assert all(name in str(err.value) for name in ARCHITECTURES) and "\n" not in str(err.value)
    with pytest.raises(InvalidParameterError, match="modality must be one of"):
        model_factory(None, "video")


def test_factory_pickles_for_process_pools():
    factory = pickle.loads(pickle.dumps(model_factory("mlp", "tabular", hidden=(4,))))
    assert isinstance(factory(ModelSpec((3,), 2)), MLP)


def test_evaluation_keeps_its_import_working():
    from poisonlab.evaluation.experiment import model_factory as old

    assert old is model_factory
