"""Reject On Negative Impact (RONI; Nelson et al. 2008): a training sample whose addition lowers
accuracy on held-out quiz data is rejected. Models that can be updated by one sample are, instead
of being retrained per candidate: multinomial naive Bayes exactly (its counts), in closed form for
every candidate at once; SGD learners by a warm start from the base model."""

from __future__ import annotations

import copy
import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options, check_labels, check_random_state, infer_n_classes
from ...base import BaseTrainer
from ...exceptions import DataError, InvalidParameterError
from ...registry import register

#: How each kind of learner is updated by one candidate.
UPDATES = ("closed-form", "warm-start", "refit")


# --- the maths: multinomial naive Bayes plus one sample, for every candidate at once ---------------

def nb_log_params(counts: np.ndarray, class_counts: np.ndarray, alpha: float, prior: str | np.ndarray = "fit"):
    """``(feature_log_prob, class_log_prior)`` of multinomial naive Bayes from its sufficient
    statistics, as scikit-learn's ``MultinomialNB`` computes them: ``log(N_kf + alpha) -
    log(N_k + alpha F)`` and ``log(n_k / n)`` (``prior="uniform"``: ``-log K``; an array: its log).

    Examples
    --------
    >>> flp, prior = nb_log_params(np.array([[2., 0.], [0., 1.]]), np.array([1., 1.]), 1.0)
    >>> np.round(np.exp(flp), 3).tolist(), np.exp(prior).tolist()
    ([[0.75, 0.25], [0.333, 0.667]], [0.5, 0.5])
    """
    F = counts.shape[1]
    flp = np.log(counts + alpha) - np.log(counts.sum(axis=1, keepdims=True) + alpha * F)
    return flp, _log_prior(class_counts, prior)


def _log_prior(class_counts: np.ndarray, prior: str | np.ndarray) -> np.ndarray:
    if isinstance(prior, str):
        if prior == "uniform":
            return np.full(len(class_counts), -np.log(len(class_counts)))
        with np.errstate(divide="ignore"):
            return np.log(class_counts) - np.log(class_counts.sum())
    return np.log(np.asarray(prior, dtype=np.float64))


def nb_add_one_accuracy(counts: np.ndarray, class_counts: np.ndarray, X_cand: Any, y_cand: np.ndarray,
                        X_quiz: Any, y_quiz: np.ndarray, *, alpha: float, prior: str | np.ndarray = "fit",
                        chunk: int = 2048) -> tuple[np.ndarray, float]:
    """Quiz accuracy of multinomial naive Bayes trained on a base set plus each candidate, exactly,
    without retraining: ``(accuracy with candidate i, for every i; accuracy of the base)``.

    Adding candidate ``q`` (counts ``x_q``, class ``c``) changes only class ``c``'s parameters:
    its feature log-probabilities on the support of ``x_q`` and its normaliser, and the priors.
    The joint log-likelihood of quiz message ``v`` for class ``c`` becomes

    ``JLL_c(v) + v . D_q - |v| (log(N_c + |x_q| + alpha F) - log(N_c + alpha F))``,
    ``D_qf = log(N_cf + x_qf + alpha) - log(N_cf + alpha)`` on the support of ``x_q``,

    so one sparse product ``X_quiz @ D.T`` scores every (quiz, candidate) pair.

    Parameters
    ----------
    counts : ndarray (K, F)
        Per-class feature counts of the base training set (``MultinomialNB.feature_count_``).
    class_counts : ndarray (K,)
        Documents per class (``class_count_``).
    X_cand, X_quiz : array or sparse matrix of non-negative counts
    y_cand, y_quiz : ndarray of int in ``0..K-1``
    alpha : float
        Additive smoothing.
    prior : "fit", "uniform" or ndarray (K,)
        Learned priors (``fit_prior=True``), uniform, or fixed ``class_prior``.

    Examples
    --------
    >>> counts, n_k = np.array([[3., 0., 1.], [0., 2., 1.]]), np.array([2., 2.])
    >>> X_quiz, y_quiz = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 3]]), np.array([0, 1, 1])
    >>> acc, base = nb_add_one_accuracy(counts, n_k, np.array([[9, 0, 0], [1, 0, 0]]), np.array([1, 0]),
    ...                                 X_quiz, y_quiz, alpha=1.0)
    >>> base, np.round(acc, 3).tolist()
    (1.0, [0.333, 1.0])
    """
    import scipy.sparse as sp

    counts = np.asarray(counts, dtype=np.float64)
    class_counts = np.asarray(class_counts, dtype=np.float64)
    K, F = counts.shape
    Xc = sp.csr_matrix(X_cand, dtype=np.float64)
    Xq = sp.csr_matrix(X_quiz, dtype=np.float64)
    y_cand, y_quiz = np.asarray(y_cand), np.asarray(y_quiz)
    flp, log_prior = nb_log_params(counts, class_counts, alpha, prior)
    base_no_prior = np.asarray(Xq @ flp.T)                         # (Q, K)
    base_acc = float(np.mean((base_no_prior + log_prior).argmax(axis=1) == y_quiz))
    quiz_len = np.asarray(Xq.sum(axis=1)).ravel()                  # |v|
    totals = counts.sum(axis=1)                                    # N_k
    # D: per candidate, the change of its class's log counts on its support
    rows = np.repeat(np.arange(Xc.shape[0]), np.diff(Xc.indptr))
    cls = y_cand[rows]
    base_log = np.log(counts[cls, Xc.indices] + alpha)
    D = sp.csr_matrix((np.log(counts[cls, Xc.indices] + Xc.data + alpha) - base_log, Xc.indices, Xc.indptr),
                      shape=Xc.shape)
    sizes = np.asarray(Xc.sum(axis=1)).ravel()
    dnorm = np.log(totals[y_cand] + sizes + alpha * F) - np.log(totals[y_cand] + alpha * F)   # (C,)
    fixed_prior = not isinstance(prior, str) or prior == "uniform"
    n = class_counts.sum()
    acc = np.empty(Xc.shape[0])
    for start in range(0, Xc.shape[0], chunk):
        sl = slice(start, min(start + chunk, Xc.shape[0]))
        yc = y_cand[sl]
        delta = np.asarray((Xq @ D[sl].T).todense()) - quiz_len[:, None] * dnorm[sl][None, :]   # (Q, c)
        jll = np.repeat(base_no_prior[:, None, :], len(yc), axis=1)                              # (Q, c, K)
        jll[:, np.arange(len(yc)), yc] += delta
        if fixed_prior:
            jll += log_prior
        else:
            with np.errstate(divide="ignore"):
                pri = np.log(class_counts[None, :] + np.eye(K)[yc]) - np.log(n + 1)               # (c, K)
            jll += pri[None]
        acc[sl] = np.mean(jll.argmax(axis=2) == y_quiz[:, None], axis=0)
    return acc, base_acc


def nb_statistics(X: Any, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(feature counts (K, F), documents per class (K,))`` of a count matrix."""
    import scipy.sparse as sp

    onehot = sp.csr_matrix((np.ones(len(y)), (np.asarray(y), np.arange(len(y)))), shape=(n_classes, len(y)))
    counts = onehot @ X
    counts = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    return counts.astype(np.float64), np.bincount(y, minlength=n_classes).astype(np.float64)


def draw_trial(y_pool: np.ndarray, train_size: int, quiz_size: int, n_classes: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of one RONI trial: a training set of ``train_size`` with at least one sample of
    each class (the rest at random) and a disjoint quiz set of ``quiz_size``."""
    perm = rng.permutation(len(y_pool))
    first = np.array([perm[np.flatnonzero(y_pool[perm] == k)[0]] for k in range(n_classes)])
    rest = perm[~np.isin(perm, first)]
    train = np.r_[first, rest[:train_size - n_classes]]
    quiz = rest[train_size - n_classes:train_size - n_classes + quiz_size]
    return np.sort(train), np.sort(quiz)


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X[idx]


def _vstack(A: Any, B: Any) -> Any:
    import scipy.sparse as sp

    if sp.issparse(A) or sp.issparse(B):
        return sp.vstack([sp.csr_matrix(A), sp.csr_matrix(B)], format="csr")
    return np.concatenate([A, B])


@register("trainer", "roni")
class RONI(BaseTrainer):
    """Reject On Negative Impact (Nelson, Barreno, Chi, Joseph, Rubinstein, Saini, Sutton,
    Tygar & Xia, LEET 2008, "Exploiting Machine Learning to Subvert Your Spam Filter"; Barreno
    et al., Machine Learning 2010).

    For each candidate training sample, ``n_trials`` times: draw a small training set T and a
    disjoint quiz set V from trusted data, train on T and on T plus the candidate, and measure
    the change of quiz accuracy. A candidate whose mean accuracy loss exceeds the threshold is
    rejected (``flags_``); the final classifier is trained on the rest.

    Nothing is retrained per candidate where the learner allows an update:

    * multinomial naive Bayes (``MultinomialNB``, also as the last step of a ``Pipeline``):
      adding one sample adds its counts; every candidate's quiz predictions come from one
      sparse product, exactly as a retrained model would give them
      (:func:`nb_add_one_accuracy`);
    * learners with ``partial_fit`` (``SGDClassifier``, ...): the model trained on T is copied
      and continued for one pass over T plus the candidate, against one pass over T alone;
    * anything else: cloned and fitted on T plus the candidate (slow: the paper's procedure).

    Threat model: the attacker adds or controls some training samples (a dictionary attack:
    spam full of ham words, which makes a filter reject ham); the defender has trusted data to
    draw T and V from (``X_trusted``; by default the training data itself, which works when
    poisons are few enough that small random draws rarely contain them).

    Parameters
    ----------
    n_trials : int >= 1, default=5
        Training/quiz draws averaged per candidate (the paper: 5).
    train_size : int >= 2, default=20
        Size of each T (the paper: 20).
    quiz_size : int >= 1, default=50
        Size of each V (the paper: 50).
    threshold : float in [0, 1] or "calibrated", default=0.05
        Reject a candidate whose mean quiz-accuracy loss is above this. "calibrated" takes
        the median plus 3 standard deviations of the losses caused by the trusted samples
        themselves (ART's calibrated RONI); it needs ``X_trusted``.
    random_state : int, Generator or None
        The trial draws (and the learner's ``random_state``, where it has one and it is unset).

    Attributes
    ----------
    classifier_ : SklearnClassifier
        The learner trained on the accepted samples.
    flags_ : ndarray of bool
        Rejected samples.
    scores_ : ndarray of float
        Mean quiz-accuracy loss each sample causes (higher = more suspicious).
    threshold_ : float
    update_ : str
        How the learner was updated: "closed-form", "warm-start" or "refit".

    Limits
    ------
    Sees one candidate at a time: many small, individually harmless poisons (or a poison whose
    harm shows only together with others) pass. Small T and V make the measurement noisy;
    a threshold too low rejects useful atypical samples. Needs trusted data roughly free of
    poison. scikit-learn classifiers only (``model_factory()`` returns one).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.naive_bayes import MultinomialNB
    >>> from poisonlab.defenses.training import RONI
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.zeros(100, int), np.ones(100, int)]
    >>> X = rng.poisson(np.where(y[:, None] == 0, [4, 4, 4, 0.2, 0.2, 0.2], [0.2, 0.2, 0.2, 4, 4, 1]))
    >>> X = np.r_[X, [[60, 60, 60, 0, 0, 0]]]; y = np.r_[y, 1]       # class-0 words labelled 1
    >>> roni = RONI(random_state=0).fit(X, y, model_factory=MultinomialNB)
    >>> bool(roni.flags_[-1]), int(roni.flags_[:-1].sum()), roni.update_
    (True, 0, 'closed-form')
    """

    _parameter_constraints = {
        "n_trials": [Interval(numbers.Integral, 1, None, closed="left")],
        "train_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "quiz_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "threshold": [Interval(numbers.Real, 0, 1, closed="both"), Options(("calibrated",))],
        "random_state": ["random_state"],
    }

    def __init__(self, *, n_trials: int = 5, train_size: int = 20, quiz_size: int = 50,
                 threshold: float | str = 0.05, random_state: Any = None) -> None:
        self.n_trials = n_trials
        self.train_size = train_size
        self.quiz_size = quiz_size
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X: Any, y: Any, *, model_factory: Any, config: Any = None, X_trusted: Any = None,
            y_trusted: Any = None, **hooks: Any) -> "RONI":
        """Score every sample of ``(X, y)``, reject the harmful ones, train on the rest.

        ``X`` may be texts (with a ``Pipeline`` whose first steps vectorise them), a numeric array
        or a scipy sparse matrix of counts; ``model_factory()`` returns an unfitted scikit-learn
        classifier. ``X_trusted, y_trusted`` (same kind as ``X``) are where training and quiz sets
        are drawn from; default ``(X, y)``. ``config`` is unused (no torch training)."""
        import scipy.sparse as sp

        if not sp.issparse(X):
            return super().fit(X, y, model_factory=model_factory, config=config, X_trusted=X_trusted,
                               y_trusted=y_trusted, **hooks)
        self._validate_params()
        Xs = sp.csr_matrix(X)
        if Xs.shape[0] < 1 or not np.isfinite(Xs.data).all():
            raise DataError("X must be a non-empty sparse matrix of finite values")
        y = check_labels(y, Xs.shape[0])
        if infer_n_classes(y) < 2:
            raise DataError(f"y must hold at least 2 classes to train on; got {infer_n_classes(y)}")
        self._fit(Xs, y, model_factory=model_factory, config=config,
                  rng=check_random_state(self.random_state), X_trusted=X_trusted, y_trusted=y_trusted)
        return self

    def _fit(self, X, y, *, model_factory, config, rng, X_trusted=None, y_trusted=None, **hooks):
        from sklearn.base import clone, is_classifier
        from sklearn.naive_bayes import MultinomialNB
        from sklearn.pipeline import Pipeline

        from ...models.adapters import SklearnClassifier

        if not callable(model_factory):
            raise InvalidParameterError(f"model_factory must be a zero-argument factory of a scikit-learn "
                                        f"classifier; got {type(model_factory).__name__}")
        try:
            estimator = model_factory()
        except TypeError as exc:
            raise InvalidParameterError(f"model_factory must take no arguments and return a scikit-learn "
                                        f"classifier (RONI needs learners it can update): {exc}") from exc
        if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
            raise InvalidParameterError(f"model_factory must return a scikit-learn classifier; got "
                                        f"{type(estimator).__name__}")
        estimator = _seeded(estimator, rng)
        n_classes = infer_n_classes(y)
        if (X_trusted is None) != (y_trusted is None):
            raise InvalidParameterError("give both X_trusted and y_trusted, or neither")
        trusted_given = X_trusted is not None
        if trusted_given:
            y_trusted = check_labels(y_trusted, _n_rows(X_trusted), n_classes=n_classes, name="y_trusted")
        if self.threshold == "calibrated" and not trusted_given:
            raise InvalidParameterError("threshold='calibrated' needs X_trusted, y_trusted (the samples whose "
                                        "impact sets the scale)")
        # vectorise once (a Pipeline's transformer steps, fitted on everything seen)
        if isinstance(estimator, Pipeline):
            transform = clone(estimator[:-1])
            if not trusted_given:
                fit_on = X
            elif _is_texts(X):
                fit_on = np.concatenate([np.asarray(X, dtype=object), np.asarray(X_trusted, dtype=object)])
            else:
                fit_on = _vstack(X, X_trusted)
            transform.fit(fit_on)
            learner = estimator[-1]
            Xf = transform.transform(X)
            Xt = transform.transform(X_trusted) if trusted_given else Xf
        else:
            learner, Xf = estimator, X
            Xt = X_trusted if trusted_given else X
        yt = y_trusted if trusted_given else y
        if not is_classifier(learner):
            raise InvalidParameterError(f"model_factory must return a scikit-learn classifier; got "
                                        f"{type(learner).__name__}")
        present = np.bincount(yt, minlength=n_classes)
        if (present == 0).any():
            raise DataError(f"the trusted data has no sample of class(es) {np.flatnonzero(present == 0).tolist()}; "
                            f"RONI's training draws need every class")
        need = int(self.train_size) + int(self.quiz_size)
        if need > len(yt):
            raise InvalidParameterError(f"train_size + quiz_size = {need} exceeds the {len(yt)} samples "
                                        f"training and quiz sets are drawn from")
        if int(self.train_size) < n_classes:
            raise InvalidParameterError(f"train_size={self.train_size} cannot hold one sample of each of "
                                        f"the {n_classes} classes")
        if type(learner) is MultinomialNB:
            update = "closed-form"
        elif hasattr(learner, "partial_fit"):
            update = "warm-start"
        else:
            update = "refit"
        losses = np.zeros(len(y))
        cal_losses = np.zeros(len(yt)) if self.threshold == "calibrated" else None
        for _ in range(int(self.n_trials)):
            tr, qz = draw_trial(yt, int(self.train_size), int(self.quiz_size), n_classes, rng)
            XT, yT, XV, yV = _rows(Xt, tr), yt[tr], _rows(Xt, qz), yt[qz]
            losses += self._trial_loss(update, learner, XT, yT, XV, yV, Xf, y, n_classes)
            if cal_losses is not None:
                cal_losses += self._trial_loss(update, learner, XT, yT, XV, yV, Xt, yt, n_classes)
        scores = losses / int(self.n_trials)
        if cal_losses is not None:
            cal = cal_losses / int(self.n_trials)
            threshold = float(np.median(cal) + 3 * np.std(cal))
        else:
            threshold = float(self.threshold)
        self.scores_ = scores
        self.threshold_ = threshold
        self.flags_ = scores > threshold
        self.update_ = update
        if self.flags_.all():
            raise DataError("RONI rejected every sample; nothing is left to train on (lower the threshold's "
                            "strictness or give cleaner trusted data)")
        keep = np.flatnonzero(~self.flags_)
        clf = SklearnClassifier(estimator)
        clf.estimator_ = clone(estimator).fit(X[keep], y[keep])
        clf.n_classes_ = n_classes
        self.classifier_ = clf

    def _trial_loss(self, update, learner, XT, yT, XV, yV, Xc, yc, n_classes):
        """Quiz-accuracy loss each candidate of ``(Xc, yc)`` causes in one trial."""
        from sklearn.base import clone

        if update == "closed-form":
            counts, class_counts = nb_statistics(XT, yT, n_classes)
            prior: Any = "fit" if learner.fit_prior and learner.class_prior is None else (
                "uniform" if learner.class_prior is None else np.asarray(learner.class_prior))
            alpha = float(learner.alpha) if getattr(learner, "force_alpha", True) else max(float(learner.alpha), 1e-10)
            acc, base = nb_add_one_accuracy(counts, class_counts, Xc, yc, XV, yV, alpha=alpha, prior=prior)
            return base - acc
        classes = np.arange(n_classes)
        if update == "warm-start":
            base_model = clone(learner)
            base_model.partial_fit(XT, yT, classes=classes)
            ref = copy.deepcopy(base_model).partial_fit(XT, yT)
            base = float(np.mean(ref.predict(XV) == yV))
            out = np.empty(len(yc))
            for i in range(len(yc)):
                m = copy.deepcopy(base_model).partial_fit(_vstack(XT, _rows(Xc, [i])), np.r_[yT, yc[i]])
                out[i] = base - float(np.mean(m.predict(XV) == yV))
            return out
        base = float(np.mean(clone(learner).fit(XT, yT).predict(XV) == yV))
        return np.array([base - float(np.mean(clone(learner).fit(_vstack(XT, _rows(Xc, [i])), np.r_[yT, yc[i]])
                                              .predict(XV) == yV)) for i in range(len(yc))])


def _is_texts(X: Any) -> bool:
    return isinstance(X, np.ndarray) and X.dtype == object


def _n_rows(X: Any) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _seeded(estimator: Any, rng: np.random.Generator) -> Any:
    """The estimator with ``random_state`` (its own or its final step's) set from ``rng`` when
    the user left it unset, so that one seed gives one result."""
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    unset = [k for k, v in params.items() if (k == "random_state" or k.endswith("__random_state")) and v is None]
    if unset:
        seed = int(rng.integers(0, 2**31 - 1))
        estimator.set_params(**{k: seed for k in unset})
    return estimator
