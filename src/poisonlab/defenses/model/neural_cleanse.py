"""Neural Cleanse: reverse-engineer a trigger per class, find the abnormally small one
(Wang et al. 2019).

The maths sit in small pure functions next to the paper's equations: :func:`stamp` (eq. 2,
the trigger model), :func:`adjust_cost` (the L1 weight's schedule of the reference
implementation), :func:`stall_count` (its convergence rule) and :func:`anomaly_index`
(section IV-C, the MAD outlier test). :class:`NeuralCleanse` runs the optimisation and applies
the decision rule.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from typing import Any, Callable

import numpy as np

from ..._validation import Interval, check_array, check_is_fitted, check_scalar, check_seed
from ...base import CONTAMINATION_OR_AUTO, BaseDetector
from ...exceptions import AssumptionError, DataError, InvalidParameterError, PoisonlabWarning
from ...registry import register

#: Makes the MAD a consistent estimator of the standard deviation under normality (section IV-C).
MAD_CONSTANT = 1.4826
#: The paper's decision rule: an anomaly index above 2 (on the small side) is an outlier.
INDEX_THRESHOLD = 2.0
#: Default of ``min_gap``: a flagged class's mask must be this many times smaller than every other
#: class's (measured in docs/neural_cleanse.md: clean models' smallest masks are at most 1.27x
#: (MNIST), 1.22x (Fashion-MNIST, where the index exceeded 2), 1.06x (digits) below the next;
#: backdoored targets 1.44-7.45x).
MIN_GAP = 1.3
#: The reference implementation's convergence rule: the best mask must shrink by 1% ...
CONVERGENCE_TOLERANCE = 0.01


def anomaly_index(l1_norms: np.ndarray) -> np.ndarray:
    """The MAD anomaly index of each class's reversed trigger (Wang et al. 2019, section IV-C).

    .. math::

        \\mathrm{index}_t = \\frac{\\operatorname{median}(L) - L_t}{1.4826\\,
        \\operatorname{median}_j |L_j - \\operatorname{median}(L)|}

    over the L1 norms ``L`` of all classes' reversed masks. The paper takes the absolute deviation
    and looks "only at data points at the small end of the distribution"; this signed form is
    that index for classes below the median and negative above it, so ``index > 2`` is exactly the
    paper's rule (a class with an abnormally *large* mask is never flagged). 1.4826 makes the MAD
    a consistent estimator of the standard deviation of a normal distribution.

    Parameters
    ----------
    l1_norms : array of shape (n_classes,)

    Returns
    -------
    ndarray of shape (n_classes,)
        Positive for classes whose trigger is smaller than the median; above 2 is an outlier.

    Examples
    --------
    >>> anomaly_index(np.array([10.0, 11.0, 9.0, 10.0, 2.0])).round(3)  # MAD = 1
    array([ 0.   , -0.674,  0.674,  0.   ,  5.396])
    """
    l1_norms = np.asarray(l1_norms, dtype=np.float64)
    med = np.median(l1_norms)
    mad = MAD_CONSTANT * np.median(np.abs(l1_norms - med))
    return (med - l1_norms) / max(mad, 1e-12)


def mask_gap(l1_norms: np.ndarray) -> np.ndarray:
    """How many times smaller each class's reversed mask is than every other class's:
    ``min_{j != t} L_j / L_t``.

    The paper's premise (section IV-A) is that an infected label needs a *much* smaller trigger
    than any uninfected one. The anomaly index measures distance from the median in units of
    the MAD, which on 10 classes is small whenever the clean classes' norms happen to be close:
    then a naturally cheap class (a digit's 9, Fashion-MNIST's shirt) stands out by the index
    while its mask is only a few percent smaller than the next class's.

    Parameters
    ----------
    l1_norms : array of shape (n_classes,), n_classes >= 2

    Returns
    -------
    ndarray of shape (n_classes,)
        Above 1 only for the class with the smallest mask (with ties, for none).

    Examples
    --------
    >>> mask_gap(np.array([10.0, 12.0, 5.0, 10.0])).round(3)
    array([0.5  , 0.417, 2.   , 0.5  ])
    """
    l1_norms = np.asarray(l1_norms, dtype=np.float64)
    order = np.argsort(l1_norms, kind="stable")
    smallest, second = l1_norms[order[0]], l1_norms[order[1]]
    others_min = np.where(np.arange(len(l1_norms)) == order[0], second, smallest)
    return others_min / np.maximum(l1_norms, 1e-12)


def confirmed_index(index: np.ndarray, gap: np.ndarray, min_gap: float) -> np.ndarray:
    """The anomaly index, capped where the mask is not ``min_gap`` times smaller than every other:
    ``min(index, 2 * gap / min_gap)``. Above 2 exactly when both the paper's rule (index > 2)
    and the gap test (gap > min_gap) hold.

    >>> confirmed_index(np.array([3.0, 2.5, 0.1]), np.array([1.5, 1.1, 0.9]), 1.3).round(3)
    array([2.308, 1.692, 0.1  ])
    """
    return np.minimum(index, INDEX_THRESHOLD * np.asarray(gap, dtype=np.float64) / min_gap)


def stamp(X, mask, pattern):
    """``(1 - m) * x + m * p``: the trigger model of the paper (eq. 2), for arrays or tensors."""
    return (1 - mask) * X + mask * pattern


def adjust_cost(cost: np.ndarray, above: np.ndarray, up: np.ndarray, down: np.ndarray, *, patience: int,
                multiplier: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of the L1 weight's schedule, per class (the paper's reference implementation).

    The paper adjusts the weight ``lambda`` of the mask's L1 norm "dynamically during
    optimization to ensure > 99% of clean images can be successfully misclassified"; its code
    counts epochs in a row with the attack success above (``up``) or below (``down``) the
    threshold, multiplies ``lambda`` by ``multiplier`` after ``patience`` epochs above and divides
    it by ``multiplier ** 1.5`` after ``patience`` epochs below, then resets that counter.

    Parameters
    ----------
    cost, up, down : arrays of shape (k,)
        Current weight and counters of k classes.
    above : bool array of shape (k,)
        The class's current trigger reached the attack-success threshold this epoch.
    patience : int
    multiplier : float > 1

    Returns
    -------
    cost, up, down, raised, lowered : arrays of shape (k,)
        The new weight and counters; ``raised``/``lowered`` say which weights moved this epoch.

    Examples
    --------
    >>> c, up, down, r, l = adjust_cost(np.array([1.0, 1.0]), np.array([True, False]), np.array([2, 0]),
    ...                                 np.array([0, 2]), patience=3, multiplier=2.0)
    >>> c.round(3).tolist(), up.tolist(), down.tolist(), r.tolist(), l.tolist()
    ([2.0, 0.354], [0, 0], [0, 0], [True, False], [False, True])
    """
    above = np.asarray(above, dtype=bool)
    up = np.where(above, up + 1, 0)
    down = np.where(above, 0, down + 1)
    raised = up >= patience
    lowered = down >= patience
    cost = np.where(raised, cost * multiplier, np.where(lowered, cost / multiplier ** 1.5, cost))
    return cost, np.where(raised, 0, up), np.where(lowered, 0, down), raised, lowered


def stall_count(best: np.ndarray, reference: np.ndarray, stall: np.ndarray, *,
                tol: float = CONVERGENCE_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """The reference implementation's early-stopping counter, per class.

    An epoch counts as stalled when the smallest successful mask norm so far, ``best``, is not
    ``tol`` (1%) below the previous epoch's, ``reference``; the counter restarts at every
    larger improvement. A class has converged once its L1 weight has been both raised and lowered
    (:func:`adjust_cost`) and the counter reaches the early-stopping patience, so a mask that still
    shrinks, but by less than 1% an epoch, counts as converged (as in the reference code).

    Returns
    -------
    stall, reference : arrays of shape (k,)

    Examples
    --------
    >>> s, ref = stall_count(np.array([9.95, 9.0, np.inf]), np.array([10.0, 10.0, np.inf]), np.array([2, 2, 0]))
    >>> s.tolist(), ref.tolist()
    ([3, 0, 0], [9.95, 9.0, inf])
    """
    found = np.isfinite(best)
    stalled = found & (best >= (1 - tol) * reference)
    stall = np.where(stalled, stall + 1, 0)
    return stall, np.where(found, np.minimum(reference, best), reference)


@register("detector", "neural_cleanse")
class NeuralCleanse(BaseDetector):
    """Neural Cleanse (Wang, Yao, Shan, Li, Viswanath, Zheng & Zhao, "Neural Cleanse:
    Identifying and Mitigating Backdoor Attacks in Neural Networks", IEEE S&P 2019).

    For every class ``t``, optimise a mask ``m`` (H x W, in [0, 1]) and a pattern ``p`` (C x H x W)
    so that stamping clean inputs, ``(1 - m) x + m p`` (:func:`stamp`), makes the model predict
    ``t``, with the smallest L1 norm of ``m``. A backdoored target class needs a far smaller mask
    than the others; the MAD anomaly index (:func:`anomaly_index`) finds it. All classes are
    optimised together in one batch.

    Each epoch ends by checking every class's current trigger on *all* clean inputs: a mask is
    kept as the class's best only if it really sends ``asr_threshold`` of them to ``t`` (a running
    average over the epoch's batches would credit a mask with the success of the larger masks
    before it). The L1 weight follows the reference implementation's schedule
    (:func:`adjust_cost`), and a class stops once it has converged by the reference
    implementation's rule: its weight has been both raised and lowered and its best mask has not
    shrunk by 1% for ``early_stop_patience`` epochs (:func:`stall_count`).

    The paper's rule flags classes with an anomaly index above 2. It is applied only when every
    class's reversal converged and reached the threshold: an under-optimised class has a mask
    larger than its minimum, which moves the median and the MAD and inflates the others'
    indices (class 9 of a clean digits model, the demo's seed 5: index 3.1 after 10 epochs, 2.5
    after 20, 1.86 once every class had converged with verified masks). Otherwise the result is
    *inconclusive*: nothing is flagged (``threshold_`` is infinite), ``conclusive_`` is False,
    ``warning_`` says which classes and what to change, and a :class:`PoisonlabWarning` is
    raised; the indices are still in ``anomaly_index_``.

    A flag also needs the paper's premise to hold in plain terms: the class's mask must be
    ``min_gap`` (1.3) times smaller than every other class's (:func:`mask_gap`). With 10
    classes the MAD is small whenever the clean classes' norms happen to be close, and a
    naturally cheap class then exceeds index 2 with a mask only a few percent smaller than the
    next: on 15 clean models the paper's rule alone flagged 2 (Fashion-MNIST's shirt, index 2.43,
    1.22x below the next class; an MNIST model's classes 2 and 3, index 2.88, 1.09x), and no
    backdoored target it flagged was less than 1.44x below the next class
    (``docs/neural_cleanse.md``). ``min_gap=None`` applies the paper's rule alone.

    Threat model: the model may carry a patch-like backdoor; the defender has white-box gradient
    access and a few hundred clean inputs, but no poisoned data.

    Parameters
    ----------
    epochs : int, default=100
        Most passes over the clean inputs. Classes stop when they converge: after 30-54 epochs on
        8x8 digits, 16-38 on 28x28 Fashion-MNIST and R1's MNIST models. Fewer epochs than a class
        needs make the result inconclusive rather than wrong.
    batch_size : int, default=32
        Clean inputs per step (each step runs ``batch_size * n_classes`` inputs).
    lr : float, default=0.1
        Adam step size on the unconstrained (tanh) mask and pattern parameters.
    init_cost : float, default=1e-3
        Starting weight of the mask's L1 norm (the reference implementation's).
    asr_threshold : float, default=0.99
        Share of the clean inputs a reversed trigger must send to its class.
    patience : int, default=3
        Epochs above (below) the threshold before the L1 weight is raised (lowered).
    cost_multiplier : float, default=1.5
        The L1 weight is multiplied by this to raise it and divided by its 1.5th power to lower it.
    early_stop_patience : int or None, default=5
        Epochs without a 1% smaller mask, after the weight was raised and lowered, before a class
        has converged and stops. ``None`` runs every class for all ``epochs`` (convergence is then
        judged with a patience of 5).
    clip_values : (float, float), default=(0.0, 1.0)
        Range of the inputs (the pattern stays inside it).
    min_gap : float > 1 or None, default=1.3
        A flagged class's mask must be this many times smaller than every other class's
        (``scores_`` is the anomaly index capped at ``2 * gap_ / min_gap``,
        :func:`confirmed_index`). None: the paper's index alone.
    contamination : "auto" or float, default="auto"
        "auto" is the paper's rule: classes whose score (the anomaly index, confirmed by the gap)
        exceeds 2 are flagged, ``threshold_ = 2``, when the result is conclusive. A number flags
        that fraction of the classes with the highest score.
    random_state : int, Generator or None, default=0
        Seeds the mask and pattern initialisation and the batches, resolved once by ``fit``
        (``seed_``); :meth:`unlearn` reuses that seed.

    Attributes
    ----------
    seed_ : int
        The seed ``fit`` resolved from ``random_state``.
    l1_norms_ : ndarray of shape (n_classes,)
        L1 norm of each class's smallest successful mask (its last mask if none succeeded).
    masks_, patterns_ : ndarrays of shape (n_classes, H, W) and (n_classes, C, H, W)
    reached_threshold_ : bool ndarray of shape (n_classes,)
        The class's mask sent at least ``asr_threshold`` of the clean inputs to it.
    success_rates_ : ndarray of shape (n_classes,)
        Measured attack success of the kept mask on the clean inputs.
    converged_ : bool ndarray of shape (n_classes,)
        The class met the convergence rule.
    epochs_run_ : ndarray of shape (n_classes,)
        Epochs each class was optimised for.
    history_ : dict of ndarrays of shape (epochs, n_classes)
        Per epoch: ``l1`` and ``success_rate`` of the current mask, ``best_l1``, ``cost`` (NaN
        once a class has stopped).
    conclusive_ : bool
        Every class converged and reached the threshold; the paper's rule was applied.
    warning_ : str or None
        Why the result is inconclusive.
    anomaly_index_ : ndarray of shape (n_classes,)
        The paper's MAD anomaly index per class (:func:`anomaly_index`).
    gap_ : ndarray of shape (n_classes,)
        How many times smaller each class's mask is than every other class's (:func:`mask_gap`).
    scores_ : ndarray of shape (n_classes,)
        The anomaly index, capped at ``2 * gap_ / min_gap`` (the index itself when ``min_gap``
        is None).
    threshold_ : float
        2 (the paper's), or infinity when the result is inconclusive.
    flags_ : bool ndarray of shape (n_classes,)
        Classes flagged as backdoor targets.

    Limits
    ------
    Assumes a small, input-agnostic patch trigger. Large or input-specific triggers (Blended at
    high alpha, WaNet, clean-label feature collision) give no small mask and evade it; several
    infected labels (more than half) break the median. With 10 classes the MAD rests on 10
    numbers: if clean class norms were independent normal draws, the rule would flag about a
    third of clean models (simulated, see ``docs/neural_cleanse.md``); the gap test is what keeps
    a naturally cheap class (Fashion-MNIST's shirt) from being flagged on a clean model. The gap
    test assumes one infected label (all-to-one): with two target classes of similar mask size
    neither passes it (use ``min_gap=None``). On tiny images (8x8 digits) the natural trigger of
    a class is 8-15 pixels, as large as a 3x3 patch, and backdoored targets are only 1.4-1.9x
    below the next class. Measured false-positive and detection rates: ``docs/neural_cleanse.md``.

    Examples
    --------
    >>> import torch
    >>> from poisonlab.defenses.model import NeuralCleanse
    >>> with torch.random.fork_rng(devices=[]):  # a seeded model, the global RNG untouched
    ...     _ = torch.manual_seed(0); model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> X = np.random.default_rng(0).random((30, 1, 4, 4), dtype=np.float32)
    >>> nc = NeuralCleanse(epochs=3, random_state=0)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     nc = nc.fit(X, model=model)
    >>> nc.conclusive_, bool(nc.flags_.any()), nc.scores_.shape   # 3 epochs: too few to conclude
    (False, False, (3,))
    """

    stage = "model"
    unit = "class"
    modalities = ("image",)

    _parameter_constraints = {
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "init_cost": [Interval(numbers.Real, 0, None, closed="neither")],
        "asr_threshold": [Interval(numbers.Real, 0, 1, closed="right")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "cost_multiplier": [Interval(numbers.Real, 1, None, closed="neither")],
        "early_stop_patience": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "clip_values": ["array-like"],
        "min_gap": [Interval(numbers.Real, 1, None, closed="neither"), None],
        "contamination": CONTAMINATION_OR_AUTO,
        "random_state": ["random_state"],
    }

    def __init__(self, *, epochs: int = 100, batch_size: int = 32, lr: float = 0.1, init_cost: float = 1e-3,
                 asr_threshold: float = 0.99, patience: int = 3, cost_multiplier: float = 1.5,
                 early_stop_patience: int | None = 5, clip_values: tuple[float, float] = (0.0, 1.0),
                 min_gap: float | None = MIN_GAP, contamination: Any = "auto", random_state: Any = 0) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.init_cost = init_cost
        self.asr_threshold = asr_threshold
        self.patience = patience
        self.cost_multiplier = cost_multiplier
        self.early_stop_patience = early_stop_patience
        self.clip_values = clip_values
        self.min_gap = min_gap
        self.contamination = contamination
        self.random_state = random_state

    def _auto_threshold(self, scores: np.ndarray) -> float:
        # the paper's rule applies only to a conclusive reversal (every class converged and
        # reached the threshold); otherwise nothing is flagged
        return INDEX_THRESHOLD if self.conclusive_ else float("inf")

    def fit(self, X: Any, *, model: Any, callback: Callable[[str, dict], None] | None = None) -> "NeuralCleanse":
        """Reverse-engineer one trigger per class on clean images ``X`` (N, C, H, W).

        Parameters
        ----------
        X : array of shape (N, C, H, W)
            Clean inputs in ``clip_values``.
        model : nn.Module or TorchClassifier
            The model to inspect (a copy is used; the model is not changed).
        callback : callable, optional
            ``callback("epoch", info)`` after every epoch, with ``epoch``, ``epochs``,
            ``active_classes``, ``converged_classes`` and ``train_loss``.

        Returns
        -------
        self
        """
        import torch
        from torch import nn

        module = getattr(model, "module_", model)
        if not isinstance(module, nn.Module):
            raise InvalidParameterError(
                f"Neural Cleanse needs a differentiable torch model (an nn.Module or a TorchClassifier); "
                f"got {type(model).__name__}")
        X = check_array(X, "X", min_ndim=4, max_ndim=4)
        lo, hi = (float(v) for v in self.clip_values)
        if hi <= lo:
            raise InvalidParameterError(f"clip_values must be (low, high) with low < high; got {self.clip_values}")
        module = copy.deepcopy(module).eval()
        for p in module.parameters():
            p.requires_grad_(False)
        Xt = torch.as_tensor(X, dtype=torch.float32)
        try:
            with torch.no_grad():
                n_classes = module(Xt[:2]).shape[1]
        except RuntimeError as exc:
            raise DataError(f"inputs of shape {X.shape[1:]} do not fit the model: {exc}") from exc
        if n_classes < 3:
            raise AssumptionError(f"Neural Cleanse's MAD outlier test needs at least 3 classes; "
                                  f"the model has {n_classes}")
        _, C, H, W = X.shape
        self.seed_ = check_seed(self.random_state)
        gen = torch.Generator().manual_seed(self.seed_)
        mask_param = (torch.rand(n_classes, 1, H, W, generator=gen) * 2 - 1) * 0.1
        pattern_param = (torch.rand(n_classes, C, H, W, generator=gen) * 2 - 1) * 0.1
        mask_param.requires_grad_(True)
        pattern_param.requires_grad_(True)
        opt = torch.optim.Adam([mask_param, pattern_param], lr=self.lr, betas=(0.5, 0.9))

        def trigger(idx):  # mask in [0, 1] and pattern in clip_values, from the tanh parameters
            mask = (torch.tanh(mask_param[idx]) + 1) / 2
            return mask, lo + (torch.tanh(pattern_param[idx]) + 1) / 2 * (hi - lo)

        targets = torch.arange(n_classes)
        thr = float(self.asr_threshold)
        conv_patience = self.early_stop_patience if self.early_stop_patience is not None else 5
        cost = np.full(n_classes, float(self.init_cost))
        up = np.zeros(n_classes, dtype=np.int64)
        down = np.zeros(n_classes, dtype=np.int64)
        raised = np.zeros(n_classes, dtype=bool)
        lowered = np.zeros(n_classes, dtype=bool)
        stall = np.zeros(n_classes, dtype=np.int64)
        stall_ref = np.full(n_classes, np.inf)
        best_l1 = np.full(n_classes, np.inf)
        best_rate = np.zeros(n_classes)
        best_mask = torch.zeros(n_classes, 1, H, W)
        best_pattern = torch.zeros(n_classes, C, H, W)
        active = np.ones(n_classes, dtype=bool)
        converged = np.zeros(n_classes, dtype=bool)
        epochs_run = np.zeros(n_classes, dtype=np.int64)
        history: dict[str, list[np.ndarray]] = {"l1": [], "success_rate": [], "best_l1": [], "cost": []}
        ce = nn.CrossEntropyLoss(reduction="none")
        n = len(Xt)
        for epoch in range(self.epochs):
            act = np.flatnonzero(active)
            k = len(act)
            if k == 0:
                break
            act_t = torch.as_tensor(act)
            cost_t = torch.as_tensor(cost[act], dtype=torch.float32)
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for start in range(0, n, self.batch_size):
                xb = Xt[perm[start:start + self.batch_size]]
                b = len(xb)
                mask, pattern = trigger(act_t)                                       # (k, 1|C, H, W)
                stamped = stamp(xb[None], mask[:, None], pattern[:, None])         # (k, b, C, H, W)
                logits = module(stamped.reshape(k * b, C, H, W))
                loss_ce = ce(logits, targets[act_t].repeat_interleave(b)).reshape(k, b)
                loss = (loss_ce.mean(dim=1) + cost_t * mask.sum(dim=(1, 2, 3))).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * b
            with torch.no_grad():
                mask, pattern = trigger(act_t)
                l1 = mask.sum(dim=(1, 2, 3)).numpy().astype(np.float64)
                rate = self._success_rate(module, Xt, mask, pattern, targets[act_t])
            epochs_run[act] += 1
            above = rate >= thr
            better = above & (l1 < best_l1[act])
            idx = act[better]
            best_l1[idx] = l1[better]
            best_rate[idx] = rate[better]
            best_mask[idx] = mask[torch.as_tensor(better)]
            best_pattern[idx] = pattern[torch.as_tensor(better)]
            cost[act], up[act], down[act], r, lw = adjust_cost(cost[act], above, up[act], down[act],
                                                               patience=self.patience,
                                                               multiplier=float(self.cost_multiplier))
            raised[act] |= r
            lowered[act] |= lw
            stall[act], stall_ref[act] = stall_count(best_l1[act], stall_ref[act], stall[act])
            converged[act] |= raised[act] & lowered[act] & (stall[act] >= conv_patience)
            if self.early_stop_patience is not None:
                active &= ~converged
            for key, values in (("l1", l1), ("success_rate", rate), ("best_l1", best_l1[act]), ("cost", cost[act])):
                row = np.full(n_classes, np.nan)
                row[act] = values
                history[key].append(row)
            if callback is not None:
                callback("epoch", {"epoch": epoch + 1, "epochs": self.epochs, "active_classes": k,
                                   "converged_classes": int(converged.sum()), "train_loss": total / n / k})
        # a class that never reached the threshold keeps its last mask (reported as such)
        never = np.isinf(best_l1)
        if never.any():
            with torch.no_grad():
                idx = torch.as_tensor(np.flatnonzero(never))
                mask, pattern = trigger(idx)
                best_mask[idx], best_pattern[idx] = mask, pattern
                best_l1[never] = mask.sum(dim=(1, 2, 3)).numpy()
                best_rate[never] = self._success_rate(module, Xt, mask, pattern, targets[idx])
        self.l1_norms_ = best_l1.astype(np.float64)
        self.masks_ = best_mask.numpy()[:, 0]
        self.patterns_ = best_pattern.numpy()
        self.reached_threshold_ = ~never
        self.success_rates_ = best_rate
        self.converged_ = converged
        self.epochs_run_ = epochs_run
        self.history_ = {key: np.array(rows).reshape(len(rows), n_classes) for key, rows in history.items()}
        self.warning_ = self._inconclusive_reason(never, converged, epochs_run)
        self.conclusive_ = self.warning_ is None
        if self.warning_ is not None:
            warnings.warn(self.warning_, PoisonlabWarning, stacklevel=3)
        self.anomaly_index_ = anomaly_index(self.l1_norms_)
        self.gap_ = mask_gap(self.l1_norms_)
        self._calibrate(self.anomaly_index_ if self.min_gap is None
                        else confirmed_index(self.anomaly_index_, self.gap_, self.min_gap))
        return self

    @staticmethod
    def _success_rate(module, Xt, mask, pattern, targets, chunk: int = 256) -> np.ndarray:
        """Share of all clean inputs that each of k triggers sends to its target (no gradient)."""
        import torch

        k = len(targets)
        hits = torch.zeros(k)
        for start in range(0, len(Xt), chunk):
            xb = Xt[start:start + chunk]
            b = len(xb)
            stamped = stamp(xb[None], mask[:, None], pattern[:, None]).reshape(k * b, *xb.shape[1:])
            hits += (module(stamped).argmax(dim=1).reshape(k, b) == targets[:, None]).float().sum(dim=1)
        return (hits / len(Xt)).numpy().astype(np.float64)

    def _inconclusive_reason(self, never: np.ndarray, converged: np.ndarray, epochs_run: np.ndarray) -> str | None:
        """Why the paper's rule cannot be applied to this reversal, or None when it can."""
        reasons = []
        if never.any():
            reasons.append(f"class(es) {np.flatnonzero(never).tolist()} never reached an attack success of "
                           f"{self.asr_threshold:g} (give more epochs, more clean inputs, or a lower "
                           f"asr_threshold)")
        pending = ~converged & ~never
        if pending.any():
            reasons.append(f"class(es) {np.flatnonzero(pending).tolist()} had not converged after "
                           f"{int(epochs_run.max())} epochs (their smallest mask was still shrinking, or the L1 "
                           f"weight had not yet been both raised and lowered): give more epochs (default 100)")
        if not reasons:
            return None
        return ("Neural Cleanse is inconclusive, nothing flagged: " + "; ".join(reasons)
                + ". An under-optimised class has a larger mask than it needs, which moves the median "
                  "and the MAD of the anomaly index.")

    def reversed_trigger(self, target: int) -> tuple[np.ndarray, np.ndarray]:
        """``(mask, pattern)`` reversed for class ``target``."""
        check_is_fitted(self, "masks_")
        return self.masks_[target], self.patterns_[target]

    def apply_reversed_trigger(self, X: Any, target: int) -> np.ndarray:
        """Stamp ``X`` with the reversed trigger of ``target``."""
        mask, pattern = self.reversed_trigger(target)
        X = check_array(X, "X", min_ndim=4, max_ndim=4)
        return stamp(X, mask[None, None], pattern[None]).astype(X.dtype, copy=False)

    def unlearn(self, model: Any, X: Any, y: Any, *, stamp_fraction: float = 0.2, epochs: int = 1,
                lr: float = 1e-3, batch_size: int = 64) -> Any:
        """Mitigation by unlearning (paper section VI-C): fine-tune a *copy* of the model on clean
        data of which ``stamp_fraction`` is stamped with the flagged classes' reversed triggers,
        keeping the true labels. Returns the repaired copy (a TorchClassifier)."""
        from ...models.adapters import TorchClassifier
        from ...models.training import TrainConfig

        check_is_fitted(self, "flags_")
        check_scalar(stamp_fraction, "stamp_fraction", numbers.Real, low=0.0, high=1.0)
        X = check_array(X, "X", min_ndim=4, max_ndim=4)
        y = np.asarray(y)
        flagged = np.flatnonzero(self.flags_)
        rng = np.random.default_rng(self.seed_)
        Xs = X.copy()
        if len(flagged):
            idx = rng.choice(len(X), int(round(stamp_fraction * len(X))), replace=False)
            which = flagged[rng.integers(0, len(flagged), len(idx))]
            for t in flagged:
                sel = idx[which == t]
                Xs[sel] = self.apply_reversed_trigger(X[sel], int(t))
        module = getattr(model, "module_", model)
        repaired = TorchClassifier(module, config=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size,
                                                              seed=self.seed_), warm_start=True)
        return repaired.fit(Xs, y)
