"""Models: reference architectures, the training loop, adapters, feature extraction, reference
pipelines, and saving / loading (safetensors weights plus a model card)."""

from .adapters import SklearnClassifier, TorchClassifier, as_classifier
from .architectures import (
    ARCHITECTURES,
    DEFAULT_ARCHITECTURE,
    MLP,
    ConvNet,
    ModelSpec,
    TextBag,
    build_model,
    model_factory,
)
from .features import extract_features, get_layer
from .io import ModelCard, card_path, load_classifier, load_model, read_card, save_model, weights_sha256
from .pipelines import text_pipeline
from .text import Vocabulary, tokenize
from .training import TrainConfig, TrainHistory, train_module

__all__ = [
    "ARCHITECTURES", "ConvNet", "DEFAULT_ARCHITECTURE", "MLP", "ModelCard", "ModelSpec",
    "SklearnClassifier", "TextBag", "TorchClassifier", "TrainConfig", "TrainHistory", "Vocabulary",
    "as_classifier", "build_model", "card_path", "extract_features", "get_layer", "load_classifier",
    "load_model", "model_factory", "read_card", "save_model", "text_pipeline", "tokenize",
    "train_module", "weights_sha256",
]
