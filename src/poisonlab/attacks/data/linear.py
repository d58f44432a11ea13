"""Poisoning of linear models: adversarial label flips and Biggio's gradient attack on an SVM."""

from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np

from ..._validation import HasMethods, Interval
from ...base import N_POISON, POISON_RATE, BaseAttack, PoisonResult, resolve_n_poison
from ...exceptions import DataError, InvalidParameterError
from ...registry import register


def hinge_loss(margins: np.ndarray) -> float:
    """``sum_k max(0, 1 - y_k f(x_k))`` given the margins ``y_k f(x_k)``."""
    return float(np.maximum(0.0, 1.0 - margins).sum())


def _signed(y: np.ndarray, positive: int) -> np.ndarray:
    return np.where(y == positive, 1.0, -1.0)


def _default_svm():
    from sklearn.svm import SVC

    return SVC(kernel="linear", C=1.0)


@register("attack", "adversarial_label_flip")
class AdversarialLabelFlip(BaseAttack):
    """Adversarial label flipping against a linear classifier: greedy, ALFA-like.

    Biggio, Nelson & Laskov (2011, "Support Vector Machines Under Adversarial Label Noise") and
    Xiao, Xiao & Eckert (2012, ALFA) flip the labels that hurt a linear SVM most. This greedy
    version flips one label per round: it retrains the estimator with each candidate flipped and
    keeps the flip that most increases a hinge loss: on the attacker's validation set when
    ``poison(X, y, X_val=..., y_val=...)`` gets one (Biggio et al.'s setting), else on the
    training inputs with their clean labels (ALFA's objective: a classifier as far as possible
    from the true one). On MNIST 7-vs-1 (R9) the validation objective reached 41% test error
    with 20% flips, the clean-label one 22% (no better than random flips).

    Threat model: the attacker knows the learner and the training inputs and controls
    ``n_poison`` labels. Binary tasks (two classes present).

    Parameters
    ----------
    poison_rate : float, default=0.1
    n_poison : int, optional
    estimator : scikit-learn classifier with ``decision_function``, optional
        Default ``SVC(kernel="linear", C=1)``.
    max_candidates : int, default=200
        Candidates retrained per round (a seeded sample when the training set is larger).
    random_state : int, Generator or None
    callback : callable, optional
        ``callback("flip", {"done": k, "total": n, "loss": ...})`` after each flip.

    Limits
    ------
    Cost is ``n_poison x max_candidates`` fits: meant for the small training sets where
    linear-model poisoning is studied (hundreds of points), not 60,000.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import AdversarialLabelFlip
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(-2, 1, (30, 2)), rng.normal(2, 1, (30, 2))]; y = np.repeat([0, 1], 30)
    >>> res = AdversarialLabelFlip(n_poison=6, random_state=0).poison(X, y)
    >>> int((res.y != y).sum())
    6
    """

    family = "label_flip"
    modalities = ("tabular", "image", "audio")
    min_ndim = 2
    binary_only = True

    _parameter_constraints = {
        "poison_rate": POISON_RATE,
        "n_poison": N_POISON,
        "estimator": [HasMethods("fit", "decision_function"), None],
        "max_candidates": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "callback": [callable, None],
    }

    def __init__(self, *, poison_rate: float | None = 0.1, n_poison: int | None = None, estimator: Any = None,
                 max_candidates: int = 200, random_state: Any = None,
                 callback: Callable[[str, dict], None] | None = None) -> None:
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.estimator = estimator
        self.max_candidates = max_candidates
        self.random_state = random_state
        self.callback = callback

    def _poison(self, X, y, *, n_classes, rng, X_val=None, y_val=None, **needs):
        from sklearn.base import clone

        classes = np.unique(y)
        if len(classes) != 2:
            raise DataError(f"adversarial label flipping attacks a binary task; y holds {len(classes)} classes")
        n = resolve_n_poison(self.poison_rate, self.n_poison, len(y), len(y), candidates_desc="samples")
        Xf = X.reshape(len(X), -1)
        est = self.estimator if self.estimator is not None else _default_svm()
        if (X_val is None) != (y_val is None):
            raise InvalidParameterError("give both X_val and y_val, or neither")
        if X_val is not None:
            X_obj, y_obj = _check_validation(X_val, y_val, Xf.shape[1], classes)
        else:
            X_obj, y_obj = Xf, y
        s_true = _signed(y_obj, classes[1])
        y_cur = np.array(y, copy=True)
        flipped = np.zeros(len(y), dtype=bool)
        losses = []
        for k in range(n):
            pool = np.flatnonzero(~flipped)
            if len(pool) > self.max_candidates:
                pool = rng.choice(pool, self.max_candidates, replace=False)
            best, best_loss = -1, -np.inf
            for i in pool:
                y_try = y_cur.copy()
                y_try[i] = classes[0] if y_try[i] == classes[1] else classes[1]
                if len(np.unique(y_try)) < 2:
                    continue
                model = clone(est).fit(Xf, y_try)
                loss = hinge_loss(s_true * _decision(model, X_obj, classes[1]))
                if loss > best_loss:
                    best, best_loss = int(i), loss
            if best < 0:
                break
            y_cur[best] = classes[0] if y_cur[best] == classes[1] else classes[1]
            flipped[best] = True
            losses.append(best_loss)
            if self.callback is not None:
                self.callback("flip", {"done": k + 1, "total": n, "loss": best_loss})
        idx = np.flatnonzero(flipped)
        return PoisonResult(np.array(X, copy=True), y_cur, flipped, idx, None,
                            {"attack": type(self).__name__, "n_poison": len(idx), "poison_rate": len(idx) / len(y),
                             "objective": "validation hinge loss" if X_val is not None else "clean-label hinge loss",
                             "hinge_loss_after_each_flip": losses})


def _check_validation(X_val: Any, y_val: Any, n_features: int, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Xv = np.asarray(X_val, dtype=np.float64)
    Xv = Xv.reshape(len(Xv), -1)
    yv = np.asarray(y_val)
    if Xv.shape[1] != n_features or len(yv) != len(Xv):
        raise DataError(f"X_val must hold the same features as X ({n_features}) with one label each; "
                        f"got {Xv.shape} and {yv.shape}")
    if not np.isfinite(Xv).all():
        raise DataError("X_val holds NaN or infinite values")
    if not set(np.unique(yv).tolist()) <= set(classes.tolist()):
        raise DataError(f"y_val holds labels outside the training classes {classes.tolist()}")
    return Xv, yv


def _decision(model: Any, X: np.ndarray, positive: Any) -> np.ndarray:
    """Decision values oriented so that positive means class ``positive``."""
    d = np.asarray(model.decision_function(X), dtype=np.float64)
    return d if model.classes_[1] == positive else -d


def svm_poison_gradient(X_tr: np.ndarray, s_tr: np.ndarray, alpha: np.ndarray, margin: np.ndarray,
                        x_c: np.ndarray, s_c: float, alpha_c: float, X_val: np.ndarray,
                        s_val: np.ndarray, violated: np.ndarray) -> np.ndarray:
    """Gradient of the validation hinge loss w.r.t. the attack point (Biggio, Nelson & Laskov
    2012, eq. 8-10), linear kernel ``K(a, b) = a . b``.

    With ``Q_ij = y_i y_j K(x_i, x_j)`` and the margin support vectors ``s``, the KKT conditions
    stay satisfied while ``x_c`` moves, which gives
    ``[da_s; db] = -[[Q_ss, y_s], [y_s^T, 0]]^{-1} [alpha_c dQ_sc; 0]`` and, for each validation
    point, ``dg_k = Q_ks da_s + alpha_c dQ_kc + y_k db`` where ``g_k = y_k f(x_k) - 1`` and
    ``dQ_ic = y_i y_c x_i``. The loss ``L = sum_k max(0, -g_k)`` has gradient
    ``-sum_{k: g_k < 0} dg_k``. ``alpha`` are the dual coefficients of the training points
    (the attack point excluded), ``margin`` flags those with ``0 < alpha < C``.
    """
    Xs, ss = X_tr[margin], s_tr[margin]
    m = len(Xs)
    if m == 0:
        return np.zeros_like(x_c)
    M = np.zeros((m + 1, m + 1))
    M[:m, :m] = (ss[:, None] * ss[None, :]) * (Xs @ Xs.T)
    M[:m, m] = ss
    M[m, :m] = ss
    rhs = np.zeros((m + 1, X_tr.shape[1]))
    rhs[:m] = alpha_c * (ss * s_c)[:, None] * Xs
    sol = -np.linalg.lstsq(M, rhs, rcond=None)[0]
    d_alpha, d_b = sol[:m], sol[m]
    Xk, sk = X_val[violated], s_val[violated]
    Q_ks = (sk[:, None] * ss[None, :]) * (Xk @ Xs.T)
    dg = Q_ks @ d_alpha + alpha_c * (sk * s_c)[:, None] * Xk + sk[:, None] * d_b[None, :]
    return -dg.sum(axis=0)


@register("attack", "svm_poisoning")
class SVMPoisoning(BaseAttack):
    """Gradient-ascent poisoning of a linear SVM (Biggio, Nelson & Laskov 2012, "Poisoning
    Attacks against Support Vector Machines").

    Each attack point starts as a copy of a training point with its label flipped (so the SVM
    must account for it) and climbs the gradient of the hinge loss on the attacker's validation
    set (:func:`svm_poison_gradient`), retraining the SVM after every step, within the input box
    ``clip``. A step that does not raise the loss is retried at half the length (the gradient
    vanishes once the point stops being a support vector); the point stops when the step falls
    below ``step_size / 64`` or after ``max_iter`` steps. Points are added one after another,
    each against the SVM poisoned so far.

    Threat model: the attacker knows the learner (a linear ``SVC``) and the training data, holds
    a validation set from the same distribution, and injects ``n_poison`` labelled points.

    Parameters
    ----------
    n_poison : int, default=1
        Attack points to add (appended at the end of the training set).
    C : float, default=1.0
        The victim SVM's regularisation (the attack retrains ``SVC(kernel="linear", C=C)``).
    step_size : float, default=0.1
        Length of each step along the normalised gradient, in input units.
    max_iter : int, default=200
    tol : float, default=1e-6
        A step must raise the validation loss by at least ``tol`` to be taken.
    clip : (float, float), default=(0, 1)
    random_state : int, Generator or None
        Chooses the starting points.
    callback : callable, optional

    Requires ``poison(X, y, X_val=..., y_val=...)``.

    Limits
    ------
    Linear kernel and binary labels only (the paper also derives RBF and polynomial kernels).
    """

    family = "gradient"
    modalities = ("tabular", "image")
    min_ndim = 2
    binary_only = True
    needs = ("X_val", "y_val")

    _parameter_constraints = {
        "n_poison": [Interval(numbers.Integral, 1, None, closed="left")],
        "C": [Interval(numbers.Real, 0, None, closed="neither")],
        "step_size": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "clip": ["array-like"],
        "random_state": ["random_state"],
        "callback": [callable, None],
    }

    def __init__(self, *, n_poison: int = 1, C: float = 1.0, step_size: float = 0.1, max_iter: int = 200,
                 tol: float = 1e-6, clip: Any = (0.0, 1.0), random_state: Any = None,
                 callback: Callable[[str, dict], None] | None = None) -> None:
        self.n_poison = n_poison
        self.C = C
        self.step_size = step_size
        self.max_iter = max_iter
        self.tol = tol
        self.clip = clip
        self.random_state = random_state
        self.callback = callback

    def _fit(self, X, s):
        from sklearn.svm import SVC

        return SVC(kernel="linear", C=float(self.C)).fit(X, s)

    def _state(self, model, n):
        alpha = np.zeros(n)
        alpha[model.support_] = np.abs(model.dual_coef_[0])
        C = float(self.C)
        return alpha, (alpha > 1e-8 * C) & (alpha < C * (1 - 1e-8))

    def _poison(self, X, y, *, n_classes, rng, X_val=None, y_val=None, **_):
        classes = np.unique(y)
        if len(classes) != 2:
            raise DataError(f"SVM poisoning attacks a binary task; y holds {len(classes)} classes")
        Xv, yv = _check_validation(X_val, y_val, X.reshape(len(X), -1).shape[1], classes)
        lo, hi = (float(v) for v in self.clip)
        sv = _signed(yv, classes[1])
        Xt = X.reshape(len(X), -1).astype(np.float64)
        st = _signed(y, classes[1])
        added_X, added_s, trace = [], [], []
        for p in range(int(self.n_poison)):
            j = int(rng.integers(len(Xt)))
            x_c, s_c = Xt[j].copy(), -st[j]

            def evaluate(x):
                XA, sA = np.vstack([Xt, *added_X, x[None]]), np.r_[st, added_s, s_c]
                model = self._fit(XA, sA)
                alpha, margin = self._state(model, len(XA))
                g_val = sv * model.decision_function(Xv) - 1.0
                return hinge_loss(g_val + 1.0), (XA, sA, alpha, margin, g_val)

            loss_prev, state = evaluate(x_c)
            step = float(self.step_size)
            for it in range(int(self.max_iter)):
                XA, sA, alpha, margin, g_val = state
                grad = svm_poison_gradient(XA[:-1], sA[:-1], alpha[:-1], margin[:-1], x_c, s_c, alpha[-1],
                                           Xv, sv, g_val < 0)
                norm = np.linalg.norm(grad)
                if norm == 0:
                    break
                cand = np.clip(x_c + step * grad / norm, lo, hi)
                loss, cand_state = evaluate(cand)
                if loss - loss_prev < self.tol:
                    # overshot (e.g. the point left the error vectors, where the gradient
                    # vanishes): back off and retry from the last good point
                    step /= 2
                    if step < self.step_size / 64:
                        break
                    continue
                x_c, loss_prev, state = cand, loss, cand_state
            added_X.append(x_c[None])
            added_s.append(s_c)
            trace.append(loss_prev)
            if self.callback is not None:
                self.callback("point", {"done": p + 1, "total": int(self.n_poison), "val_hinge_loss": loss_prev})
        Xp = np.vstack(added_X).reshape((len(added_X),) + X.shape[1:]).astype(X.dtype)
        yp = np.where(np.asarray(added_s) > 0, classes[1], classes[0]).astype(np.int64)
        X_out, y_out = np.concatenate([np.array(X, copy=True), Xp]), np.concatenate([np.array(y, copy=True), yp])
        mask = np.r_[np.zeros(len(y), bool), np.ones(len(yp), bool)]
        return PoisonResult(X_out, y_out, mask, np.flatnonzero(mask), None,
                            {"attack": type(self).__name__, "n_poison": len(yp), "poison_rate": len(yp) / len(y_out),
                             "val_hinge_loss": trace})
