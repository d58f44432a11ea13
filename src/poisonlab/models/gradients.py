"""Gradient primitives on torch models, batched and seeded: PGD (Madry et al. 2018), feature
functions of a named layer, and the checks gradient methods share.

They live in ``models/`` because attacks (clean-label poisons crafted against a surrogate),
defenses and models (adversarial training, :class:`~poisonlab.models.robust.AdversarialTraining`)
all use them, and a model must never import an attack.

Examples
--------
>>> import numpy as np, torch
>>> from poisonlab.models import MLP
>>> from poisonlab.models.gradients import pgd
>>> with torch.random.fork_rng(devices=[]):
...     _ = torch.manual_seed(0); module = MLP(4, 2, hidden=(8,)).eval()
>>> X = np.full((3, 4), 0.5, np.float32)
>>> adv = pgd(module, X, np.zeros(3, int), eps=0.1, steps=5)
>>> bool(np.abs(adv - X).max() <= 0.1 + 1e-6), adv.dtype
(True, dtype('float32'))
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..exceptions import DataError, InvalidParameterError


def torch_module(model: Any, X: np.ndarray):
    """The differentiable ``nn.Module`` behind ``model`` (a fitted ``TorchClassifier`` or a
    module), checked against one input of ``X``'s shape."""
    import torch
    from torch import nn

    module = getattr(model, "module_", model)
    if not isinstance(module, nn.Module):
        raise InvalidParameterError(
            f"the surrogate model must be a torch module or a fitted TorchClassifier (gradients are "
            f"needed); got {type(model).__name__}")
    module.eval()
    try:
        with torch.no_grad():
            module(torch.tensor(np.asarray(X[:1], dtype=np.float32)))
    except RuntimeError as exc:
        raise DataError(f"inputs of shape {X.shape[1:]} do not fit the surrogate model: {exc}") from exc
    return module


def project(delta, eps: float, norm: str):
    """Project perturbations (a torch tensor, batch first) onto the ``norm`` ball of radius eps."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    flat = delta.flatten(1).norm(dim=1).clamp(min=1e-12)
    factor = (eps / flat).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))


def pgd_tensor(module, x, t, *, eps: float, norm: str = "linf", steps: int = 100, step_size: float,
               clip: tuple[float, float] = (0.0, 1.0), generator=None, early_stop: bool = False,
               targeted: bool = False, mask=None, init=None):
    """PGD on one torch batch ``x`` with labels ``t``; returns the detached adversarial batch.

    ``x_{t+1} = Proj(x_t + a * sign(grad))`` for L-inf, ``a * grad / ||grad||_2`` for L2, from a
    random start drawn from ``generator``. ``targeted``: ``t`` are the classes to reach, and the
    step descends their cross-entropy instead of ascending it. ``mask`` (a tensor shaped like
    ``x``, 1 where the input may change, 0 where not) confines the start and every step to a
    region. ``init`` (a tensor shaped like ``x``) replaces the random start: the perturbation to
    continue from, projected back into the ball (the error-minimising noise of Huang et al. 2021
    is refined this way, one PGD run per outer iteration). Only the perturbation receives
    gradients; the module's parameters are left alone.
    """
    import torch
    import torch.nn.functional as F

    lo, hi = clip
    if init is None:
        delta = project((torch.rand(x.shape, generator=generator) * 2 - 1) * eps, eps, norm)
    else:
        delta = project(init.detach().clone(), eps, norm)
    if mask is not None:
        delta = delta * mask
    delta = ((x + delta).clamp(lo, hi) - x).requires_grad_(True)
    for _ in range(steps):
        logits = module(x + delta)
        if early_stop and bool(((logits.argmax(1) == t) if targeted else (logits.argmax(1) != t)).all()):
            break
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, t), delta)
        if targeted:
            grad = -grad
        if mask is not None:
            grad = grad * mask
        with torch.no_grad():
            if norm == "linf":
                delta += step_size * grad.sign()
            else:
                delta += step_size * grad / grad.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, *([1] * (x.dim() - 1)))
            delta.copy_((x + project(delta, eps, norm)).clamp(lo, hi) - x)
    return (x + delta).detach()


def pgd(module, X: np.ndarray, y: np.ndarray, *, eps: float, norm: str = "linf", steps: int = 100,
        step_size: float | None = None, clip: tuple[float, float] = (0.0, 1.0), seed: int = 0,
        batch_size: int = 256, early_stop: bool = False, targeted: bool = False,
        mask: np.ndarray | None = None, init: np.ndarray | None = None,
        callback: Callable[[str, dict], None] | None = None) -> np.ndarray:
    """Projected gradient descent (Madry et al. 2018): maximise the cross-entropy of the true
    labels ``y`` (or, ``targeted``, minimise that of the classes ``y`` to reach) within the
    ``eps`` ball (``norm`` "linf" or "l2") and ``clip``, in batches (:func:`pgd_tensor`); step
    size ``2.5 eps / steps`` unless given. ``early_stop`` stops a batch once every input in it
    is misclassified (targeted: classified as its target). ``mask`` (shaped like ``X``, 1 where an
    input may change) confines the perturbation. ``init`` (shaped like ``X``): perturbations to
    start from instead of a random start. Given the true labels and ``targeted=True``, PGD
    *minimises* their loss: error-minimising noise (Huang et al. 2021, eq. 2's inner minimum).
    Returns the perturbed inputs (same dtype as ``X``).
    """
    import torch

    if norm not in ("linf", "l2"):
        raise InvalidParameterError(f"norm must be 'linf' or 'l2'; got {norm!r}")
    a = step_size if step_size is not None else 2.5 * eps / steps
    gen = torch.Generator().manual_seed(int(seed))
    out = np.empty_like(X)
    for s in range(0, len(X), batch_size):
        x = torch.tensor(np.asarray(X[s:s + batch_size], dtype=np.float32))
        t = torch.tensor(np.asarray(y[s:s + batch_size], dtype=np.int64))
        m = None if mask is None else torch.tensor(np.asarray(mask[s:s + batch_size], dtype=np.float32))
        d0 = None if init is None else torch.tensor(np.asarray(init[s:s + batch_size], dtype=np.float32))
        adv = pgd_tensor(module, x, t, eps=eps, norm=norm, steps=steps, step_size=a, clip=clip,
                         generator=gen, early_stop=early_stop, targeted=targeted, mask=m, init=d0)
        out[s:s + batch_size] = adv.numpy().astype(X.dtype, copy=False)
        if callback is not None:
            callback("pgd", {"done": min(s + batch_size, len(X)), "total": len(X)})
    return out


def class_wise_pgd_tensor(module, x, t, delta, *, eps: float, steps: int, step_size: float,
                          clip: tuple[float, float] = (0.0, 1.0), minimise: bool = True):
    """PGD on one perturbation per class (L-inf): ``delta`` has shape ``(K, *x.shape[1:])`` and
    the batch ``x`` (labels ``t``) is seen as ``clip(x + delta[t])``. Each step moves every
    class's perturbation by ``step_size * sign`` of the gradient of the batch's mean
    cross-entropy -- down when ``minimise`` (the class-wise error-minimising noise of Huang et
    al. 2021, Sec. 3: a universal perturbation per class), up otherwise -- and projects it onto
    ``[-eps, eps]``. Classes absent from the batch get no gradient and stay put. Returns the
    updated ``delta`` (detached); the module's parameters are left alone.
    """
    import torch
    import torch.nn.functional as F

    lo, hi = clip
    delta = delta.detach().clone().clamp(-eps, eps).requires_grad_(True)
    for _ in range(steps):
        loss = F.cross_entropy(module((x + delta[t]).clamp(lo, hi)), t)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta -= (step_size if minimise else -step_size) * grad.sign()
            delta.clamp_(-eps, eps)
    return delta.detach()


class FeatureFn:
    """Differentiable features of a named layer of ``module`` (a forward hook keeps the output
    with its graph). ``layer=None``: the module's default feature layer."""

    def __init__(self, module, layer: str | None = None) -> None:
        from .features import default_feature_layer, get_layer

        self.module = module
        self.layer = layer or default_feature_layer(module)
        self._target = get_layer(module, self.layer)

    def __call__(self, x):
        captured = []
        handle = self._target.register_forward_hook(lambda _m, _i, o: captured.append(o))
        try:
            self.module(x)
        finally:
            handle.remove()
        return captured[-1].flatten(1)


def check_target_input(target_input: Any, X: np.ndarray, *, single: bool) -> np.ndarray:
    """Target input(s) shaped like the samples of ``X`` as a float32 batch; one input when
    ``single``. Raises a DataError naming what is wrong."""
    t = np.asarray(target_input, dtype=np.float32)
    if t.shape == X.shape[1:]:
        t = t[None]
    if t.shape[1:] != X.shape[1:] or (single and len(t) != 1):
        what = "one input" if single else "input(s)"
        raise DataError(f"target_input must be {what} of shape {X.shape[1:]}; got {np.shape(target_input)}")
    if not np.isfinite(t).all():
        raise DataError("target_input holds NaN or infinite values")
    return t
