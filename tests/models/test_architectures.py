"""Architectures: model_factory (a named architecture, or the modality's default, as a ModelSpec ->
module factory), shapes they accept, padding and pooling, receptive fields and the log-mel front end."""

import pickle

import numpy as np
import pytest
import torch

from poisonlab import InvalidParameterError
from poisonlab.models import ARCHITECTURES, MLP, ConvNet, ModelSpec, TextBag, build_model, model_factory


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


def test_convnet_any_shape():
    m = ConvNet((1, 32, 97), 10, widths=(8, 16))
    assert m(torch.zeros(2, 1, 32, 97)).shape == (2, 10)
    with pytest.raises(InvalidParameterError, match="too small"):
        ConvNet((1, 2, 2), 3, widths=(4, 4, 4))
    with pytest.raises(InvalidParameterError, match="unknown architecture"):
        build_model("resnet", ModelSpec((1, 8, 8), 10))


def test_text_cnn_ignores_padding_and_pools_over_time():
    torch.manual_seed(0)
    m = build_model("text-cnn", ModelSpec((6,), 2, vocab_size=20)).eval()
    short = torch.tensor([[5, 6, 7, 0, 0, 0]])
    longer = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        assert torch.allclose(m(short), m(longer), atol=1e-6)  # padding never enters the pooling
    with pytest.raises(InvalidParameterError, match="needs a vocabulary"):
        build_model("text-cnn", ModelSpec((6,), 2))


@pytest.mark.parametrize("arch, shape", [("strip-mnist-cnn", (1, 28, 28)), ("cnn", (1, 8, 8)),
                                         ("cifar-cnn", (3, 32, 32))])
def test_every_input_pixel_is_seen(arch, shape):
    """A border trigger must reach the output: no pixel may fall outside every receptive field
    (the bottom-right 3x3 square of BadNets lives in the last rows and columns)."""
    model = build_model(arch, ModelSpec(shape, 10))
    x = torch.rand(1, *shape, requires_grad=True)
    model(x).sum().backward()
    seen = x.grad.abs().sum(dim=1)[0] > 0
    assert seen[-3:, -3:].all() and seen[:3, :3].all()


def test_logmel_front_end_matches_the_numpy_features():
    from poisonlab.data.audio import log_mel_spectrogram
    from poisonlab.models.architectures import LogMel

    w = np.random.default_rng(0).normal(0, 0.1, (3, 4000)).astype(np.float32)
    ours = LogMel(8000)(torch.tensor(w)).numpy()
    assert ours.shape == (3, 1, 32, 47)
    assert np.allclose(ours, log_mel_spectrogram(w, 8000)[:, None], atol=1e-4)
    m = build_model("audio-wave-cnn", ModelSpec((4000,), 10))
    assert m(torch.tensor(w)).shape == (3, 10)
    with pytest.raises(InvalidParameterError, match="shorter than"):
        build_model("audio-wave-cnn", ModelSpec((100,), 10))
