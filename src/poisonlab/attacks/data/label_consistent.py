"""Label-consistent backdoor: adversarially hardened target-class images carry the trigger."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options, check_scalar
from ...registry import register
from ...models.gradients import pgd, torch_module
from ..triggers import LOCATIONS, patch_pattern, patch_slices, stamp_patch
from ._clean_label import CleanLabelBackdoor

FOUR_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


@register("attack", "label_consistent")
class LabelConsistent(CleanLabelBackdoor):
    """Label-consistent backdoor (Turner, Tsipras & Madry 2019, "Label-Consistent Backdoor
    Attacks", section 4.2).

    Target-class images are first made hard to classify with projected gradient descent against
    a separately trained surrogate model (eq. 1: maximise the loss of the true label within
    ``eps``), then stamped with a BadNets patch. Their labels stay correct, but the model cannot
    rely on their (now misleading) natural features, so it leans on the trigger, which then
    flips any triggered input to the target.

    Threat model: the attacker knows the task well enough to train a surrogate, perturbs a
    share of the target class within ``eps`` and adds the patch; no label changes.

    Parameters
    ----------
    target : int, default=0
    poison_rate : float, default=0.01
        Poisons out of the whole training set, drawn from the target class.
    n_poison : int, optional
    eps : float > 0, default=0.3
        Perturbation budget in input units (0.3 in L-inf is the usual MNIST budget; the paper
        uses 8-16/255 on CIFAR-10).
    norm : {"linf", "l2"}, default="linf"
    direction : {"away", "random-class"}, default="away"
        "away": the paper's eq. 1, maximise the loss of the true label. "random-class": descend
        toward a class drawn at random for each image (never the target), so the poisons carry
        features of different classes rather than one shared perturbation style.
    steps : int, default=100
    step_size : float, optional
        Default ``2.5 * eps / steps``.
    patch_size : int, default=3
    pattern : {"square", "checkerboard"}, default="square"
        The patch: all ``value``, or black and white as in Turner et al.
    location : str or (row, col), default="bottom-right"
        A corner, "center", (row, col), or "four-corners": the patch in every corner, as
        Turner et al. place it so that it survives flips and crops.
    value : float, default=1.0
        Patch intensity.
    amplitude : float > 0, optional
        Turner et al.'s reduced-amplitude trigger (section 4.3): the poisons' patch pixels are
        not overwritten but moved by ``+amplitude`` where the pattern is on and ``-amplitude``
        where it is off (then clipped), e.g. 16/255 or 32/255, so the trigger is faint in the
        training set. Test inputs (:meth:`apply_trigger`) still get the full patch, as in the
        paper. None (default): the poisons carry the full patch too.
    clip : (float, float), default=(0, 1)
    early_stop : bool, default=False
        Stop each PGD batch once the surrogate misclassifies all of it (faster, weaker poisons).
    perturb : bool, default=True
        False skips PGD: the patch on unmodified target images, the baseline Turner et al.
        compare against (it mostly fails, which is the point of the attack).
    random_state : int, Generator or None
        Chooses the poisoned samples and seeds PGD's random start.
    callback : callable, optional
        ``callback(stage, info)`` after each PGD batch.

    Requires ``poison(X, y, model=surrogate)``: a fitted ``TorchClassifier`` or torch module
    taking inputs shaped like ``X``.

    Limits
    ------
    White-box on the surrogate; transfer to the victim is what makes it work, so a surrogate
    far from the victim weakens it. Images only.
    """

    modalities = ("image",)
    min_ndim = 3
    needs = ("model",)

    _parameter_constraints = {
        **CleanLabelBackdoor._parameter_constraints,
        "eps": [Interval(numbers.Real, 0, None, closed="neither")],
        "norm": [Options(("linf", "l2"))],
        "direction": [Options(("away", "random-class"))],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "step_size": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "pattern": [Options(("square", "checkerboard"))],
        "location": [Options((*LOCATIONS, "four-corners")), "array-like"],
        "value": [Interval(numbers.Real, None, None, closed="neither")],
        "amplitude": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "clip": ["array-like"],
        "early_stop": ["boolean"],
        "perturb": ["boolean"],
        "random_state": ["random_state"],
        "callback": [callable, None],
    }

    def __init__(self, *, target: int = 0, poison_rate: float | None = 0.01, n_poison: int | None = None,
                 eps: float = 0.3, norm: str = "linf", direction: str = "away", steps: int = 100, step_size: float | None = None,
                 patch_size: int = 3, pattern: str = "square", location: Any = "bottom-right", value: float = 1.0,
                 amplitude: float | None = None, clip: Any = (0.0, 1.0), early_stop: bool = False, perturb: bool = True,
                 random_state: Any = None, callback: Any = None) -> None:
        self.target = target
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.eps = eps
        self.norm = norm
        self.direction = direction
        self.steps = steps
        self.step_size = step_size
        self.patch_size = patch_size
        self.pattern = pattern
        self.location = location
        self.value = value
        self.amplitude = amplitude
        self.clip = clip
        self.early_stop = early_stop
        self.perturb = perturb
        self.random_state = random_state
        self.callback = callback

    def _fit_trigger(self, X, rng):
        if self.norm == "linf":
            # an L-inf budget as wide as the value range is no budget at all
            span = float(self.clip[1]) - float(self.clip[0])
            check_scalar(self.eps, "eps", numbers.Real, low=0.0, high=span, low_inclusive=False,
                         high_inclusive=False)

    def _prepare(self, X, y, idx, rng, *, model=None, **_):
        module = torch_module(model, X)
        if not self.perturb:
            return np.array(X[idx], copy=True)
        seed = int(rng.integers(2**31))
        goal, targeted = y[idx], False
        if self.direction == "random-class":
            # a class other than the target for each image: draw from K - 1 and skip the target
            goal = rng.integers(0, self.n_classes_ - 1, size=len(idx))
            goal = goal + (goal >= self.target)
            targeted = True
        return pgd(module, X[idx], goal, eps=float(self.eps), norm=self.norm, steps=int(self.steps),
                   step_size=self.step_size, clip=tuple(self.clip), seed=seed,
                   early_stop=self.early_stop, targeted=targeted, callback=self.callback)

    def _apply_trigger(self, X: np.ndarray, *, test: bool = False) -> np.ndarray:
        pattern = patch_pattern(self.pattern, int(self.patch_size))
        corners = FOUR_CORNERS if isinstance(self.location, str) and self.location == "four-corners" \
            else (self.location,)
        if self.amplitude is None or test:
            for where in corners:
                X = stamp_patch(X, pattern, where, value=float(self.value))
            return X
        # reduced amplitude: nudge the patch pixels up where the pattern is on, down where off
        H, W = X.shape[-2:]
        delta = np.zeros((H, W))
        sign = 2.0 * (pattern > 0.5) - 1.0
        ph, pw = pattern.shape
        for where in corners:
            rs, cs = patch_slices(H, W, ph, pw, where)
            delta[rs, cs] = sign * float(self.amplitude)
        lo, hi = (float(c) for c in self.clip)
        return np.clip(X + delta.astype(X.dtype), lo, hi).astype(X.dtype, copy=False)
