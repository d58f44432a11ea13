"""Fine-pruning (Liu, Dolan-Gavitt & Garg 2018): prune dormant channels, then fine-tune."""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..._validation import check_array, check_labels, check_scalar
from ...exceptions import InvalidParameterError


@dataclass
class FinePruningResult:
    """The repaired model and the way there.

    ``curve`` holds one row per pruning step: channels pruned, clean accuracy, and ASR when an
    ``asr_fn`` was given; ``final`` the metrics after fine-tuning.
    """

    model: Any
    layer: str
    pruned: list[int]
    n_channels: int
    curve: list[dict[str, float]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)


def channel_activation(module, layer: str, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Mean activation of each output channel of ``layer`` after ReLU over clean inputs
    (the paper's ordering statistic)."""
    import torch

    from ...models.features import get_layer
    from ...models.training import to_tensor

    target = get_layer(module, layer)
    sums = []
    handle = target.register_forward_hook(lambda _m, _i, o: sums.append(torch.relu(o).mean(dim=(0, 2, 3)) * len(o)))
    try:
        with torch.no_grad():
            for start in range(0, len(X), batch_size):
                module(to_tensor(X[start:start + batch_size]))
    finally:
        handle.remove()
    return (torch.stack(sums).sum(0) / len(X)).numpy()


def last_conv_layer(module) -> str:
    from torch import nn

    convs = [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise InvalidParameterError(f"{type(module).__name__} has no Conv2d layer to prune")
    return convs[-1]


def fine_prune(model: Any, X: Any, y: Any, *, X_val: Any, y_val: Any, layer: str | None = None,
               max_accuracy_drop: float = 0.04, step: int = 1, fine_tune_epochs: int = 1,
               lr: float = 1e-3, asr_fn: Callable[[Any], float] | None = None, seed: int = 0) -> FinePruningResult:
    """Prune ``layer``'s channels (default: the last convolution) in increasing order of mean
    clean activation, ``step`` at a time, until clean validation accuracy would drop by more than
    ``max_accuracy_drop``; then fine-tune the pruned model on ``(X, y)``.

    The user's model is never modified: pruning and fine-tuning act on a copy. Pruned channels
    stay at zero through fine-tuning (weight and bias masks).

    Threat model: a backdoored model whose trigger is carried by channels that clean inputs
    leave dormant; the defender has clean data. Limits: a pruning-aware attacker (the paper's
    own adaptive attack) hides the backdoor in channels clean data uses; see the fine-tuning
    step, which the paper adds for that case.
    """
    import torch
    from torch import nn
    from torch.nn.utils import prune

    from ...models.adapters import TorchClassifier
    from ...models.features import get_layer
    from ...models.training import TrainConfig, train_module

    check_scalar(max_accuracy_drop, "max_accuracy_drop", numbers.Real, low=0.0, high=1.0)
    check_scalar(step, "step", numbers.Integral, low=1)
    check_scalar(fine_tune_epochs, "fine_tune_epochs", numbers.Integral, low=0)
    module = getattr(model, "module_", model)
    if not isinstance(module, nn.Module):
        raise InvalidParameterError(f"fine-pruning needs a torch model; got {type(model).__name__}")
    X = check_array(X, "X", min_ndim=2)
    y = check_labels(y, len(X))
    X_val = check_array(X_val, "X_val", min_ndim=2)
    y_val = check_labels(y_val, len(X_val), name="y_val")
    work = copy.deepcopy(module).eval()
    layer = layer or last_conv_layer(work)
    conv = get_layer(work, layer)
    if not isinstance(conv, nn.Conv2d):
        raise InvalidParameterError(f"layer {layer!r} is a {type(conv).__name__}, not a Conv2d")
    order = np.argsort(channel_activation(work, layer, X_val), kind="stable")
    clf = TorchClassifier.from_trained(work)

    def evaluate() -> dict[str, float]:
        row = {"clean_accuracy": float((clf.predict(X_val) == y_val).mean())}
        if asr_fn is not None:
            row["attack_success_rate"] = float(asr_fn(clf))
        return row

    base = evaluate()
    curve = [{"pruned": 0, **base}]
    w0, b0 = conv.weight.data.clone(), conv.bias.data.clone() if conv.bias is not None else None
    pruned: list[int] = []
    for k in range(step, len(order), step):
        cand = order[:k]
        conv.weight.data.copy_(w0)
        conv.weight.data[cand] = 0
        if b0 is not None:
            conv.bias.data.copy_(b0)
            conv.bias.data[cand] = 0
        row = evaluate()
        if base["clean_accuracy"] - row["clean_accuracy"] > max_accuracy_drop:
            break
        pruned = cand.tolist()
        curve.append({"pruned": k, **row})
    # restore the last acceptable pruning and keep it masked while fine-tuning
    conv.weight.data.copy_(w0)
    if b0 is not None:
        conv.bias.data.copy_(b0)
    keep = torch.ones(conv.out_channels)
    keep[pruned] = 0
    prune.custom_from_mask(conv, "weight", keep.view(-1, 1, 1, 1).expand_as(conv.weight).clone())
    if conv.bias is not None:
        prune.custom_from_mask(conv, "bias", keep.clone())
    if fine_tune_epochs:
        # Train the masked copy in place: the adapter's fit would deep-copy it first.
        train_module(work, X, y, TrainConfig(epochs=fine_tune_epochs, lr=lr, seed=seed), reset=False)
    prune.remove(conv, "weight")
    if conv.bias is not None:
        prune.remove(conv, "bias")
    clf = TorchClassifier.from_trained(work.eval())
    return FinePruningResult(model=clf, layer=layer, pruned=pruned, n_channels=conv.out_channels, curve=curve,
                             final={"pruned": len(pruned), **evaluate()})
