"""Adversarial training (Madry et al. 2018), for attackers' surrogates and robust baselines."""

from __future__ import annotations

import numbers

import torch
from torch import nn

from .._validation import check_option, check_scalar


class AdversarialTraining:
    """Replace every training batch by its PGD adversarial examples (Madry, Makelov, Schmidt,
    Tsipras & Vladu 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks"):
    ``min_theta E[max_{||delta|| <= eps} L(theta, x + delta, y)]``, the inner maximum approximated
    by ``steps`` of projected gradient ascent from a random start.

    Pass it to ``TorchClassifier.fit(..., batch_transform=AdversarialTraining(eps=0.3))`` or
    ``train_module``. Gradients of robust models point at the features a human sees, which is
    why the label-consistent backdoor crafts against one (Turner et al. 2019, section 4.2).

    Parameters
    ----------
    eps : float > 0
        Radius of the perturbation ball, in input units (0.3 for MNIST in [0, 1], the paper's).
    steps : int, default=10
    step_size : float, optional
        Default ``2.5 * eps / steps``.
    norm : {"linf", "l2"}, default="linf"
    clip : (float, float), default=(0, 1)
        Valid input range.
    ramp : int, default=0
        Batches over which the radius grows linearly from ``eps / ramp`` to ``eps``. Training at
        MNIST's eps 0.3 from the first batch can stall at chance accuracy (seen here: 9.9% after
        5 epochs); a ramp over the first epoch or two avoids it.
    seed : int, default=0
        Seeds the random starts (one generator for the whole run: same seed, same model).

    Limits
    ------
    Costs about ``steps + 1`` forward-backward passes per batch. Models without randomness in
    their layers craft in whatever mode training left them (train mode).
    """

    def __init__(self, *, eps: float, steps: int = 10, step_size: float | None = None,
                 norm: str = "linf", clip: tuple[float, float] = (0.0, 1.0), ramp: int = 0,
                 seed: int = 0) -> None:
        check_scalar(eps, "eps", numbers.Real, low=0.0, low_inclusive=False)
        check_scalar(steps, "steps", numbers.Integral, low=1)
        check_scalar(step_size, "step_size", numbers.Real, low=0.0, low_inclusive=False, allow_none=True)
        check_option(norm, "norm", ("linf", "l2"))
        check_scalar(ramp, "ramp", numbers.Integral, low=0)
        self.ramp, self.batches_seen = int(ramp), 0
        self.eps, self.steps, self.norm, self.clip = float(eps), int(steps), norm, clip
        self.step_size = 2.5 * self.eps / self.steps if step_size is None else float(step_size)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from .gradients import pgd_tensor

        self.batches_seen += 1
        scale = min(1.0, self.batches_seen / self.ramp) if self.ramp else 1.0
        return pgd_tensor(module, x, y, eps=self.eps * scale, norm=self.norm, steps=self.steps,
                          step_size=self.step_size * scale, clip=self.clip, generator=self.generator)
