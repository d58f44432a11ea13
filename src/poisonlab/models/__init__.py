"""Models: reference architectures, the training loop, adapters and feature extraction."""

from .adapters import SklearnClassifier, TorchClassifier, as_classifier
from .architectures import (
    ARCHITECTURES,
    DEFAULT_ARCHITECTURE,
    MLP,
    ConvNet,
    ModelSpec,
    TextBag,
    build_model,
)
from .features import extract_features, get_layer
from .text import Vocabulary, tokenize
from .training import TrainConfig, TrainHistory, train_module

__all__ = [
    "ARCHITECTURES", "ConvNet", "DEFAULT_ARCHITECTURE", "MLP", "ModelSpec", "SklearnClassifier",
    "TextBag", "TorchClassifier", "TrainConfig", "TrainHistory", "Vocabulary", "as_classifier",
    "build_model", "extract_features", "get_layer", "tokenize", "train_module",
]
