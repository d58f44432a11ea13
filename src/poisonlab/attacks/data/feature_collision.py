"""Feature collision ("Poison Frogs"): clean-label poisons that sit on a target in feature space."""

from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np

from ..._validation import Interval, check_class
from ...base import BaseAttack, PoisonResult, resolve_n_poison
from ...registry import register
from .._budget import perturbation_budget
from ...models.gradients import FeatureFn, check_target_input, torch_module


def forward_backward(x, base, target_feat, feat_fn, *, lr: float, beta: float, steps: int,
                     clip: tuple[float, float], eps: float | None, tol: float = 1e-7):
    """Shafahi et al. 2018, Algorithm 1, for a batch of poisons (torch tensors):

    forward  ``x^ = x - lr * grad_x ||f(x) - f(t)||^2``   (gradient step on the collision loss)
    backward ``x  = (x^ + lr * beta * b) / (1 + lr * beta)`` (proximal step of ``beta ||x - b||^2``)

    then clipped to the input range and, if ``eps`` is given, to the L-inf ball around the base.
    Stops when the relative change of the objective falls below ``tol``. Returns the poisons
    and the per-poison feature distance.
    """
    import torch

    lo, hi = clip
    x = x.clone()
    prev = None
    for _ in range(steps):
        x.requires_grad_(True)
        dist = ((feat_fn(x) - target_feat) ** 2).sum(dim=1)
        (grad,) = torch.autograd.grad(dist.sum(), x)
        with torch.no_grad():
            x = x - lr * grad
            x = (x + lr * beta * base) / (1 + lr * beta)
            if eps is not None:
                x = torch.max(torch.min(x, base + eps), base - eps)
            x = x.clamp(lo, hi)
            objective = float(dist.sum() + beta * ((x - base) ** 2).flatten(1).sum())
        if prev is not None and abs(prev - objective) <= tol * max(abs(prev), 1e-12):
            break
        prev = objective
    with torch.no_grad():
        final = ((feat_fn(x) - target_feat) ** 2).sum(dim=1).sqrt()
    return x.detach(), final


@register("attack", "feature_collision")
class FeatureCollision(BaseAttack):
    """Feature-collision poisoning, "Poison Frogs" (Shafahi, Huang, Najibi, Suciu, Studer,
    Dumitras & Goldstein 2018, "Poison Frogs! Targeted Clean-Label Poisoning Attacks on Neural
    Networks").

    Each poison starts from a correctly labelled *base* image of ``base_class`` and is moved by
    forward-backward splitting until its features (at ``layer`` of the surrogate) collide with
    those of one *target* input, while staying close to the base in input space. The poisons
    keep their base label; a model trained on them that classifies by those features then puts
    the target in ``base_class``. With ``watermark > 0`` the target is first blended into each
    base at that opacity (the paper's multi-poison end-to-end recipe, 30% for ResNets).

    Threat model: the attacker knows (or has a copy of) the feature extractor, picks one target
    test input, and inserts ``n_poison`` correctly labelled images. Transfer learning (frozen
    extractor, retrained head) is the setting where one poison can suffice; end-to-end training
    needs watermarking and many poisons.

    Parameters
    ----------
    base_class : int, default=0
        Class the target should be assigned to (the bases come from it).
    n_poison : int, default=5
    beta : float, default=0.25
        Weight of ``||x - b||^2``; the paper scales ``beta_0 = 0.25`` by
        ``(2048 / dim_b)^2`` for InceptionV3 features; pass the scaled value.
    lr : float, default=0.01
    steps : int, default=1000
    watermark : float in [0, 1), default=0.0
    eps : float, optional
        An L-inf cap on ``|x - b|`` (the paper has none; ART's version neither).
    layer : str, optional
        Feature layer of the surrogate; default its penultimate layer.
    clip : (float, float), default=(0, 1)
    random_state : int, Generator or None
        Chooses the bases.
    callback : callable, optional

    Requires ``poison(X, y, model=surrogate, target_input=x_t)``.

    Limits
    ------
    One target per call (the paper's experiments craft per target). Success needs the victim
    to classify through the attacked feature layer: near-certain with a frozen extractor, rare
    end to end.
    """

    family = "clean_label"
    modalities = ("image", "tabular", "audio")
    min_ndim = 2
    needs = ("model", "target_input")

    _parameter_constraints = {
        "base_class": ["class_index"],
        "n_poison": [Interval(numbers.Integral, 1, None, closed="left")],
        "beta": [Interval(numbers.Real, 0, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "watermark": [Interval(numbers.Real, 0, 1, closed="left")],
        "eps": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "layer": [str, None],
        "clip": ["array-like"],
        "random_state": ["random_state"],
        "callback": [callable, None],
    }

    def __init__(self, *, base_class: int = 0, n_poison: int = 5, beta: float = 0.25, lr: float = 0.01,
                 steps: int = 1000, watermark: float = 0.0, eps: float | None = None, layer: str | None = None,
                 clip: Any = (0.0, 1.0), random_state: Any = None,
                 callback: Callable[[str, dict], None] | None = None) -> None:
        self.base_class = base_class
        self.n_poison = n_poison
        self.beta = beta
        self.lr = lr
        self.steps = steps
        self.watermark = watermark
        self.eps = eps
        self.layer = layer
        self.clip = clip
        self.random_state = random_state
        self.callback = callback

    def _poison(self, X, y, *, n_classes, rng, model=None, target_input=None, **_):
        import torch

        check_class(self.base_class, "base_class", n_classes)
        t = check_target_input(target_input, X, single=True)
        module = torch_module(model, X)
        candidates = np.flatnonzero(y == self.base_class)
        n = resolve_n_poison(None, self.n_poison, len(y), len(candidates),
                             candidates_desc=f"samples in base class {self.base_class}")
        idx = np.sort(rng.choice(candidates, size=n, replace=False))
        feat = FeatureFn(module, self.layer)
        base = torch.tensor(np.asarray(X[idx], dtype=np.float32))
        tt = torch.tensor(t)
        if self.watermark > 0:
            base = (1 - self.watermark) * base + self.watermark * tt
        with torch.no_grad():
            target_feat = feat(tt)
        for p in module.parameters():
            p.requires_grad_(False)
        try:
            poisons, dist = forward_backward(base.clone(), base, target_feat, feat, lr=float(self.lr),
                                             beta=float(self.beta), steps=int(self.steps),
                                             clip=tuple(float(v) for v in self.clip),
                                             eps=None if self.eps is None else float(self.eps))
        finally:
            for p in module.parameters():
                p.requires_grad_(True)
        X_out = np.array(X, copy=True)
        X_out[idx] = poisons.numpy().astype(X.dtype, copy=False)
        with torch.no_grad():
            base_dist = ((feat(torch.tensor(np.asarray(X[idx], dtype=np.float32))) - target_feat) ** 2).sum(1).sqrt()
        mask = np.zeros(len(y), dtype=bool)
        mask[idx] = True
        if self.callback is not None:
            self.callback("done", {"feature_distance": dist.tolist()})
        return PoisonResult(X_out, np.array(y, copy=True), mask, idx, int(self.base_class),
                            {"attack": type(self).__name__, "n_poison": n, "labels_changed": 0,
                             "feature_distance_before": base_dist.tolist(), "feature_distance_after": dist.tolist(),
                             **perturbation_budget(X_out[idx], X[idx])})
