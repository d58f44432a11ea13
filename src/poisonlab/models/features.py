"""Features of a named layer through forward hooks, batched and streaming."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..exceptions import InvalidParameterError
from .training import to_tensor


def get_layer(module: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (dotted path as in ``named_modules``), or a clear error."""
    layers = dict(module.named_modules())
    if name not in layers or name == "":
        shown = [n for n in layers if n][:25]
        raise InvalidParameterError(f"layer {name!r} does not exist in {type(module).__name__}; "
                                    f"layers: {shown}")
    return layers[name]


def default_feature_layer(module: nn.Module) -> str:
    """The module's declared ``feature_layer``, else the last module before the last Linear."""
    declared = getattr(module, "feature_layer", None)
    if declared:
        return declared
    named = [(n, m) for n, m in module.named_modules() if n]
    linear = [i for i, (_, m) in enumerate(named) if isinstance(m, nn.Linear)]
    if not linear or linear[-1] == 0:
        raise InvalidParameterError(f"cannot guess the feature layer of {type(module).__name__}; "
                                    f"pass layer=")
    return named[linear[-1] - 1][0]


@torch.no_grad()
def extract_features(module: nn.Module, X: Any, layer: str | None = None, *, batch_size: int = 256,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Outputs of ``layer`` for every input, flattened to ``(N, d)`` float32.

    Runs in batches; ``X`` may be a memory-mapped array, and ``out`` a preallocated (e.g.
    memory-mapped) array to write into, so memory stays at one batch whatever N is.
    """
    layer = layer or default_feature_layer(module)
    target = get_layer(module, layer)
    captured: list[torch.Tensor] = []
    handle = target.register_forward_hook(lambda _m, _i, o: captured.append(o.detach()))
    was_training = module.training
    module.eval()
    try:
        n = len(X)
        for start in range(0, n, batch_size):
            captured.clear()
            module(to_tensor(np.asarray(X[start:start + batch_size])))
            feats = captured[-1].reshape(len(captured[-1]), -1).numpy().astype(np.float32, copy=False)
            if out is None:
                out = np.empty((n, feats.shape[1]), dtype=np.float32)
            out[start:start + len(feats)] = feats
    finally:
        handle.remove()
        module.train(was_training)
    return out if out is not None else np.empty((0, 0), dtype=np.float32)
