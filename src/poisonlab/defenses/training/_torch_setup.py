"""What the torch trainers (anti-backdoor learning, trimmed loss, DP-SGD) share: the training
configuration resolved from ``config`` and ``random_state``, and a fresh module built from the
user's factory (never a module of the user's trained in place)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..._validation import check_seed
from ...exceptions import DataError, InvalidParameterError


def resolve_config(config: Any, random_state: Any, rng: np.random.Generator):
    """A private copy of ``config`` (default ``TrainConfig()``), validated; its ``seed`` is
    ``random_state`` when one is given (an int as is, a Generator: one draw), else
    ``config.seed``."""
    from ...models.training import TrainConfig

    if config is None:
        cfg = TrainConfig()
    elif isinstance(config, TrainConfig):
        cfg = copy.deepcopy(config)
    elif isinstance(config, dict):
        try:
            cfg = TrainConfig(**config)
        except TypeError as exc:
            raise InvalidParameterError(f"config: {exc}") from exc
    else:
        raise InvalidParameterError(f"config must be a TrainConfig, a dict or None; got {type(config).__name__}")
    if random_state is not None:
        cfg.seed = check_seed(rng if not isinstance(random_state, (int, np.integer)) else random_state)
    return cfg.validate()


def build_module(model_factory: Any, X: np.ndarray, y: np.ndarray):
    """``(module, spec)``: a new module from ``model_factory(spec)`` (the spec holds the input
    shape and the number of classes), built off the global torch RNG (its weights are re-drawn
    from the training seed when training starts)."""
    import torch
    from torch import nn

    from ...models.architectures import ModelSpec

    if X.dtype == object:
        raise DataError("torch trainers take numeric arrays (or token ids); got texts: encode them first "
                        "(poisonlab.models.text.Vocabulary)")
    if isinstance(model_factory, nn.Module):
        raise InvalidParameterError("model_factory must be a factory ModelSpec -> nn.Module, not a module: "
                                    "trainers build a fresh model and never train the user's in place")
    if not callable(model_factory):
        raise InvalidParameterError(f"model_factory must be callable (ModelSpec -> nn.Module); got "
                                    f"{type(model_factory).__name__}")
    spec = ModelSpec(tuple(X.shape[1:]), int(y.max()) + 1)
    with torch.random.fork_rng(devices=[]):
        module = model_factory(spec)
    if not isinstance(module, nn.Module):
        raise InvalidParameterError(f"model_factory must return a torch nn.Module; got {type(module).__name__}")
    return module, spec


def classifier_from(module: Any, n_classes: int):
    """The fitted module behind the classifier protocol (``predict``, ``predict_proba``)."""
    from ...models.adapters import TorchClassifier

    return TorchClassifier.from_trained(module.eval(), n_classes=n_classes)


def per_sample_losses(module: Any, X: np.ndarray, y: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Cross-entropy of every sample under ``module`` in eval mode (float64), without gradients."""
    import torch

    from ...models.training import cross_entropy_losses, label_tensor, to_tensor

    was = module.training
    module.eval()
    out = np.empty(len(X), dtype=np.float64)
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            logits = module(to_tensor(X[i:i + batch_size]))
            yb = label_tensor(y[i:i + batch_size])
            out[i:i + batch_size] = cross_entropy_losses(logits, yb).double().numpy()
    module.train(was)
    return out
