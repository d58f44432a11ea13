"""Gradient matching ("Witches' Brew"): poisons whose training gradient points at a target."""

from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np

from ..._validation import Interval, Options, check_class, check_scalar
from ...exceptions import InvalidParameterError
from ...base import N_POISON, POISON_RATE, BaseAttack, PoisonResult, resolve_n_poison
from ...registry import register
from .._budget import perturbation_budget
from ...models.gradients import check_target_input, torch_module


def alignment_loss(poison_grads, target_grads) -> Any:
    """``1 - cos(grad_poison, grad_adv)`` over all parameters flattened together (Geiping et al.
    2021, eq. 3): 0 when training on the poisons moves the weights exactly as training the
    target towards the adversarial label would."""
    import torch

    dot = sum((p * t).sum() for p, t in zip(poison_grads, target_grads))
    pn = torch.sqrt(sum((p * p).sum() for p in poison_grads))
    tn = torch.sqrt(sum((t * t).sum() for t in target_grads))
    return 1 - dot / (pn * tn + 1e-12)


def per_sample_gradient_norms(module, X, y, batch_size: int = 256) -> np.ndarray:
    """L2 norm of each sample's cross-entropy gradient over all trainable parameters,
    ``||grad_theta L(f(x_i), y_i)||`` (computed with ``torch.func``: one vectorised pass per
    batch, no per-sample loop). The "max_gradient" poison selection of the authors' released
    code (used by Souri et al. 2022, Sleeper Agent) keeps the samples where this is largest:
    the ones the model has not fit, whose gradient still carries weight late in training."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in module.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in module.named_buffers()}

    def loss(p, x, t):
        out = functional_call(module, (p, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(out, t.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    norms = []
    for s in range(0, len(y), batch_size):
        xb = torch.as_tensor(np.asarray(X[s:s + batch_size], dtype=np.float32))
        yb = torch.as_tensor(np.asarray(y[s:s + batch_size], dtype=np.int64))
        g = per_sample(params, xb, yb)
        norms.append(torch.sqrt(sum((v.reshape(len(yb), -1) ** 2).sum(1) for v in g.values())).numpy())
    return np.concatenate(norms) if norms else np.zeros(0)


def random_shift(x, max_shift: int, gen):
    """Differentiable augmentation: every image of the batch rolled by one random offset of at
    most ``max_shift`` pixels per axis (Witches' Brew crafts through augmentations so the
    poison survives the victim's)."""
    import torch

    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


@register("attack", "gradient_matching")
class GradientMatching(BaseAttack):
    """Gradient-matching poisoning, "Witches' Brew" (Geiping, Fowl, Huang, Czaja, Taylor,
    Moeller & Goldstein 2021, "Witches' Brew: Industrial Scale Data Poisoning via Gradient
    Matching").

    Perturb ``n_poison`` correctly labelled images of ``adversarial_class`` within ``eps``
    (L-inf) so that the gradient of the training loss on them, at the surrogate's weights,
    aligns (cosine) with the gradient that would teach the model to put the target input in
    ``adversarial_class``. A victim trained from scratch on the poisoned set then tends to
    misclassify the target, though no poison resembles it and no label is wrong. Optimised with
    signed Adam over ``steps`` iterations and ``restarts`` random starts (the best alignment is
    kept), optionally through random shifts (differentiable augmentation). Given several
    surrogates (an ensemble, the paper's Sec. 5.1), the loss is the mean of their alignment
    losses, which makes the poisons less specific to one set of weights.

    Threat model: clean-label, targeted; the attacker knows the architecture and the data well
    enough to train a surrogate, and perturbs a small budget of one class.

    Parameters
    ----------
    adversarial_class : int, default=0
    poison_rate : float, default=0.01
        Budget as a fraction of the training set (drawn from ``adversarial_class``).
    n_poison : int, optional
    eps : float, default=16/255
        L-inf budget.
    steps : int, default=250
    restarts : int, default=1
    lr : float, default=0.1
        Adam step on the sign of the gradient, scaled by ``eps``.
    lr_schedule : {"step", "constant"}, default="step"
        "step" divides the step by 10 at 3/8, 5/8 and 7/8 of ``steps``, as the authors' released
        code does; "constant" keeps it.
    selection : {"random", "max_gradient"}, default="random"
        Which samples of ``adversarial_class`` to perturb: drawn at random (the paper), or those
        with the largest per-sample training-gradient norm at the surrogates' weights (mean over
        the ensemble), as the authors' released code offers.
    augment : bool, default=True
        Craft through random shifts of up to 2 pixels.
    stop_loss : float, optional
        Stop a restart once the alignment loss falls below this value.
    clip : (float, float), default=(0, 1)
    random_state : int, Generator or None
    callback : callable, optional
        ``callback("step", {"restart": r, "step": s, "loss": ...})`` every 10 steps.

    Requires ``poison(X, y, model=surrogate, target_input=x_t)``; ``model`` may be a list of
    surrogates (an ensemble); ``target_input`` may hold several targets (all pushed to
    ``adversarial_class``).

    Limits
    ------
    Success varies a lot between targets and retraining seeds (the paper reports it over many
    experiments); one ``poison`` call serves one set of targets.
    """

    family = "clean_label"
    modalities = ("image",)
    min_ndim = 3
    needs = ("model", "target_input")

    _parameter_constraints = {
        "adversarial_class": ["class_index"],
        "poison_rate": POISON_RATE,
        "n_poison": N_POISON,
        "eps": [Interval(numbers.Real, 0, None, closed="neither")],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "restarts": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "lr_schedule": [Options(("step", "constant"))],
        "selection": [Options(("random", "max_gradient"))],
        "augment": ["boolean"],
        "stop_loss": [Interval(numbers.Real, None, None, closed="neither"), None],
        "clip": ["array-like"],
        "random_state": ["random_state"],
        "callback": [callable, None],
    }

    def __init__(self, *, adversarial_class: int = 0, poison_rate: float | None = 0.01, n_poison: int | None = None,
                 eps: float = 16 / 255, steps: int = 250, restarts: int = 1, lr: float = 0.1,
                 lr_schedule: str = "step", selection: str = "random", augment: bool = True, stop_loss: float | None = None, clip: Any = (0.0, 1.0), random_state: Any = None,
                 callback: Callable[[str, dict], None] | None = None) -> None:
        self.adversarial_class = adversarial_class
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.eps = eps
        self.steps = steps
        self.restarts = restarts
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.selection = selection
        self.augment = augment
        self.stop_loss = stop_loss
        self.clip = clip
        self.random_state = random_state
        self.callback = callback

    def _poison(self, X, y, *, n_classes, rng, model=None, target_input=None, **_):
        import torch
        import torch.nn.functional as F

        check_class(self.adversarial_class, "adversarial_class", n_classes)
        lo, hi = (float(v) for v in self.clip)
        # an L-inf budget as wide as the value range is no budget at all
        check_scalar(self.eps, "eps", numbers.Real, low=0.0, high=hi - lo, low_inclusive=False, high_inclusive=False)
        t = check_target_input(target_input, X, single=False)
        surrogates = list(model) if isinstance(model, (list, tuple)) else [model]
        if not surrogates:
            raise InvalidParameterError("model must be a surrogate or a non-empty list of surrogates; got []")
        modules = [torch_module(m, X) for m in surrogates]
        candidates = np.flatnonzero(y == self.adversarial_class)
        n = resolve_n_poison(self.poison_rate, self.n_poison, len(y), len(candidates),
                             candidates_desc=f"samples in adversarial class {self.adversarial_class}")
        if self.selection == "random":
            idx = np.sort(rng.choice(candidates, size=n, replace=False))
        else:  # the largest gradient norms, averaged over the ensemble
            norms = np.mean([per_sample_gradient_norms(m, X[candidates], y[candidates]) for m in modules], axis=0)
            idx = np.sort(candidates[np.argsort(-norms, kind="stable")[:n]])
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        params = [[p for p in m.parameters() if p.requires_grad] for m in modules]
        adv = torch.full((len(t),), int(self.adversarial_class), dtype=torch.long)
        tt = torch.tensor(t)
        target_grads = [[g.detach() for g in torch.autograd.grad(F.cross_entropy(m(tt), adv), ps)]
                        for m, ps in zip(modules, params)]
        xb = torch.tensor(np.asarray(X[idx], dtype=np.float32))
        yb = torch.tensor(np.asarray(y[idx], dtype=np.int64))
        eps = float(self.eps)
        steps = int(self.steps)
        milestones = [int(steps / d) for d in (2.667, 1.6, 1.142)] if self.lr_schedule == "step" else []

        def ensemble_loss(xp, create_graph: bool):
            return sum(alignment_loss(torch.autograd.grad(F.cross_entropy(m(xp), yb), ps, create_graph=create_graph),
                                      tg) for m, ps, tg in zip(modules, params, target_grads)) / len(modules)

        best_delta, best_loss, history = None, np.inf, []
        for r in range(int(self.restarts)):
            delta = ((torch.rand(xb.shape, generator=gen) * 2 - 1) * eps).requires_grad_(True)
            opt = torch.optim.Adam([delta], lr=float(self.lr) * eps)
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
            loss_val = np.inf
            for step in range(steps):
                xp = (xb + delta).clamp(lo, hi)
                if self.augment:
                    xp = random_shift(xp, 2, gen)
                loss = ensemble_loss(xp, create_graph=True)
                opt.zero_grad()
                (g_delta,) = torch.autograd.grad(loss, delta)
                delta.grad = g_delta.sign()
                opt.step()
                sched.step()
                with torch.no_grad():
                    delta.clamp_(-eps, eps)
                    delta.copy_((xb + delta).clamp(lo, hi) - xb)
                loss_val = float(loss.detach())
                if self.callback is not None and step % 10 == 0:
                    self.callback("step", {"restart": r, "step": step, "loss": loss_val})
                if self.stop_loss is not None and loss_val <= self.stop_loss:
                    break
            with torch.no_grad():
                xp = (xb + delta).clamp(lo, hi)
            final = float(ensemble_loss(xp, create_graph=False))
            history.append(final)
            if final < best_loss:
                best_loss, best_delta = final, delta.detach().clone()
        X_out = np.array(X, copy=True)
        X_out[idx] = (xb + best_delta).clamp(lo, hi).numpy().astype(X.dtype, copy=False)
        d = (X_out[idx].astype(np.float64) - X[idx]).reshape(n, -1)
        changed = np.abs(d).max(axis=1) > 0
        mask = np.zeros(len(y), dtype=bool)
        mask[idx[changed]] = True
        return PoisonResult(X_out, np.array(y, copy=True), mask, np.flatnonzero(mask), int(self.adversarial_class),
                            {"attack": type(self).__name__, "n_poison": int(changed.sum()), "labels_changed": 0,
                             "alignment_loss": best_loss, "alignment_loss_per_restart": history,
                             "n_surrogates": len(modules),
                             **perturbation_budget(X_out[idx], X[idx])})
