"""Unlearnable examples (Huang et al. 2021): error-minimising noise, found by a min-min bilevel
optimisation, that gives a model nothing to learn from the real content of the images."""

from __future__ import annotations

import copy
import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...models.gradients import class_wise_pgd_tensor, pgd_tensor, torch_module
from ...registry import register
from ._availability import AvailabilityAttack


def reached_stop(train_accuracy: float, stop_accuracy: float) -> bool:
    """Huang et al.'s stopping rule of the min-min loop: stop once the crafting model's accuracy
    on the perturbed training data exceeds ``stop_accuracy`` (0.99 in the paper): the noise
    then explains the labels on its own.

    >>> reached_stop(0.995, 0.99), reached_stop(0.99, 0.99)
    (True, False)
    """
    return float(train_accuracy) > float(stop_accuracy)


@register("attack", "unlearnable")
class Unlearnable(AvailabilityAttack):
    """Error-minimising noise, "unlearnable examples" (Huang, Ma, Erfani, Bailey & Wang, ICLR
    2021, "Unlearnable Examples: Making Personal Data Unexploitable").

    Solves the min-min problem of eq. 2,
    ``min_theta E[ min_{||delta_i||_inf <= eps} L(f_theta(x_i + delta_i), y_i) ]``,
    by alternation (Sec. 3): ``train_steps`` minibatch steps of the crafting model on the
    perturbed data, then ``steps`` of PGD that *descend* the loss of the true label on every
    noise (:func:`~poisonlab.models.gradients.pgd_tensor` with ``targeted=True`` and the true
    labels, continuing from the current noise), until the model classifies more than
    ``stop_accuracy`` of the perturbed data correctly (the paper's 99%) or ``max_iter`` outer
    iterations. The noise becomes an easy shortcut to the label; a victim trained on the
    perturbed set fits the shortcut and learns next to nothing of the images (CIFAR-10 ResNet-18
    near chance with the whole set perturbed, Table 1).

    ``mode="sample_wise"``: one noise per image (eq. 2). ``mode="class_wise"``: one noise per
    class, shared by every image of that class (Sec. 3.1), updated by signed-gradient steps on
    the batch loss (:func:`~poisonlab.models.gradients.class_wise_pgd_tensor`; the authors' code
    averages per-sample PGD results instead).

    Threat model: availability, clean-label. The attacker perturbs the chosen fraction of the
    training images within ``eps`` (L-inf) and changes no label; it needs no trained surrogate,
    only a network of its own that it trains during crafting (knowledge of the task, not of the
    victim). With ``poison_rate < 1`` the noise is crafted on the chosen samples only.

    Parameters
    ----------
    eps : float > 0, default=8/255
    mode : {"sample_wise", "class_wise"}, default="sample_wise"
    steps : int, default=20
        PGD steps on the noise per outer iteration (the paper's 20).
    step_size : float, optional
        Default ``eps / 10`` (the paper's 0.8/255 at 8/255).
    train_steps : int, default=10
        Minibatch steps of the crafting model per outer iteration (the paper's M = 10).
    max_iter : int, default=20
        Cap on the outer iterations.
    stop_accuracy : float in (0, 1], default=0.99
        Stop once the crafting model's accuracy on the perturbed data exceeds it.
    lr : float, default=1e-3
        Adam learning rate of the crafting model (the paper trains ResNet-18 with SGD 0.1; Adam
        suits the project's small reference networks).
    batch_size : int, default=128
    poison_rate : float in (0, 1], default=1.0
    n_poison : int, optional
    clip : (float, float), default=(0, 1)
    random_state : int, Generator or None
        Chooses the samples, the noise's random start, the batch order (and any dropout).
    callback : callable, optional
        ``callback("unlearnable", {"iteration", "train_accuracy"})`` after each outer iteration.

    Requires ``poison(X, y, model=net)``: a torch module (or fitted ``TorchClassifier``) taking
    inputs shaped like ``X``; a copy is trained, the given one is left alone. An untrained
    network is what the paper uses.

    Limits
    ------
    The noise works only if it covers (nearly) all of the victim's training set: with a clean
    share left, the victim learns from it (Huang et al., Table 2). Adversarial training at the
    same ``eps`` and strong augmentations weaken it. Costs ``steps`` forward-backward passes
    over the poisoned samples per outer iteration. Images scaled to ``clip``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from poisonlab.models import build_model, ModelSpec
    >>> with torch.random.fork_rng(devices=[]):
    ...     _ = torch.manual_seed(0)
    ...     net = build_model("cnn", ModelSpec((1, 8, 8), 2), widths=(4,), hidden=8)
    >>> X = np.random.default_rng(0).uniform(0, 1, (8, 1, 8, 8)).astype(np.float32); y = np.arange(8) % 2
    >>> res = Unlearnable(mode="class_wise", steps=2, max_iter=2, random_state=0).poison(X, y, model=net)
    >>> bool(np.abs(res.X - X).max() <= 8 / 255 + 1e-6), bool((res.y == y).all())
    (True, True)
    """

    _parameter_constraints = {
        **AvailabilityAttack._parameter_constraints,
        "mode": [Options(("sample_wise", "class_wise"))],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "step_size": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "train_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "stop_accuracy": [Interval(numbers.Real, 0, 1, closed="right")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "callback": [callable, None],
    }

    def __init__(self, *, eps: float = 8 / 255, mode: str = "sample_wise", steps: int = 20,
                 step_size: float | None = None, train_steps: int = 10, max_iter: int = 20,
                 stop_accuracy: float = 0.99, lr: float = 1e-3, batch_size: int = 128,
                 poison_rate: float | None = 1.0, n_poison: int | None = None, clip: Any = (0.0, 1.0),
                 random_state: Any = None, callback: Any = None) -> None:
        self.eps = eps
        self.mode = mode
        self.steps = steps
        self.step_size = step_size
        self.train_steps = train_steps
        self.max_iter = max_iter
        self.stop_accuracy = stop_accuracy
        self.lr = lr
        self.batch_size = batch_size
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.clip = clip
        self.random_state = random_state
        self.callback = callback

    def _perturb(self, X, y, *, n_classes, rng, model, clip):
        import torch
        import torch.nn.functional as F

        given = getattr(model, "module_", model)
        was_training = getattr(given, "training", False)
        module = copy.deepcopy(torch_module(model, X))
        given.train(was_training)  # torch_module switched it to eval mode; leave it as it came
        for p in module.parameters():
            p.requires_grad_(True)
        seed = int(rng.integers(2**31))
        eps, bs = float(self.eps), int(self.batch_size)
        step = float(self.step_size) if self.step_size is not None else eps / 10
        lo, hi = clip
        gen = torch.Generator().manual_seed(seed)
        Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
        yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
        n = len(yt)
        class_wise = self.mode == "class_wise"
        shape = (n_classes, *Xt.shape[1:]) if class_wise else tuple(Xt.shape)
        delta = (torch.rand(shape, generator=gen) * 2 - 1) * eps

        def perturbed(idx):
            return (Xt[idx] + (delta[yt[idx]] if class_wise else delta[idx])).clamp(lo, hi)

        opt = torch.optim.Adam(module.parameters(), lr=float(self.lr))
        order, pos = torch.randperm(n, generator=gen), 0
        acc, iterations = 0.0, 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # dropout, if the network has any, draws from here
            for it in range(int(self.max_iter)):
                iterations = it + 1
                # (1) theta: a few minibatch steps on the perturbed data
                module.train()
                for _ in range(int(self.train_steps)):
                    if pos >= n:
                        order, pos = torch.randperm(n, generator=gen), 0
                    b = order[pos:pos + bs]
                    pos += bs
                    opt.zero_grad()
                    F.cross_entropy(module(perturbed(b)), yt[b]).backward()
                    opt.step()
                # (2) delta: PGD that minimises the loss of the true labels, model fixed
                module.eval()
                for s in range(0, n, bs):
                    xb, tb = Xt[s:s + bs], yt[s:s + bs]
                    if class_wise:
                        delta = class_wise_pgd_tensor(module, xb, tb, delta, eps=eps, steps=int(self.steps),
                                                      step_size=step, clip=clip, minimise=True)
                    else:
                        adv = pgd_tensor(module, xb, tb, eps=eps, steps=int(self.steps), step_size=step,
                                         clip=clip, targeted=True, init=delta[s:s + bs])
                        delta[s:s + bs] = adv - xb
                # (3) stop once the perturbed data is (nearly) perfectly fit
                acc = _accuracy(module, perturbed(torch.arange(n)), yt, bs)
                if self.callback is not None:
                    self.callback("unlearnable", {"iteration": iterations, "train_accuracy": acc})
                if reached_stop(acc, float(self.stop_accuracy)):
                    break
        Xp = perturbed(torch.arange(n)).numpy()
        facts = {"mode": self.mode, "iterations": iterations, "crafting_train_accuracy": acc,
                 "stopped_early": reached_stop(acc, float(self.stop_accuracy))}
        return Xp, facts


def _accuracy(module, X, y, batch_size: int) -> float:
    import torch

    with torch.no_grad():
        pred = torch.cat([module(X[s:s + batch_size]).argmax(1) for s in range(0, len(X), batch_size)])
    return float((pred == y).float().mean())
