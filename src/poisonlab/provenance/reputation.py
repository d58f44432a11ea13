"""Contributor reputation: a Beta posterior per contributor, and sybil-like groups.

The model
---------
Each contributor ``c`` has an unknown probability ``theta_c`` that a sample of theirs is good:
labelled as a trusted model labels it, and not flagged by a data detector. Every sample is one
Bernoulli observation of ``theta_c``. With a conjugate prior ``Beta(a0, b0)``::

    good_i  = [label_i == trusted_pred_i] and not flag_i              (eq. 1)
    alpha_c = a0 + sum_{i of c} w_i * good_i                          (eq. 2)
    beta_c  = b0 + sum_{i of c} w_i * (1 - good_i)                    (eq. 3)
    theta_c | data ~ Beta(alpha_c, beta_c)

``w_i`` are optional sample weights (default 1). The reputation is the posterior mean
``alpha / (alpha + beta)`` (eq. 4) with a one-sided lower credible bound
``Beta.ppf(1 - credibility, alpha, beta)`` (eq. 5: with probability ``credibility`` the
contributor's good-sample rate is at least this) and the matching upper bound
``Beta.ppf(credibility, alpha, beta)`` (eq. 6). With ``decay`` < 1 the evidence gathered so far is
multiplied by ``decay`` before each new round (exponential forgetting), so a contributor's old
good behaviour counts less against new bad behaviour.

Sybil-like groups
-----------------
Coordinated accounts that mislabel the same kind of input the same way leave the same footprint
against the trusted model: the same ``(trusted prediction -> given label)`` disagreements. Each
contributor gets a disagreement vector, the off-diagonal cells of their confusion matrix against
the trusted model divided by their sample count (eq. 7). Contributors whose disagreement rate is at
least ``min_disagreement`` are candidates; two candidates are linked when the cosine similarity of
their vectors is at least ``min_similarity`` (eq. 8); the connected components with at least
``min_size`` members are the groups. Honest contributors disagree rarely (the trusted model's
errors), so they are not candidates; two honest contributors whose disagreements are both mostly
the model's own errors would need disagreement rates above ``min_disagreement`` to be grouped.

Threat model and limits
-----------------------
The attacker controls the labels (and inputs) of the accounts it creates, not the trusted model,
not the detectors, and not other contributors. Reputation measures agreement with the trusted
model, so it cannot see poison the trusted model agrees with (clean-label poisons, backdoors
whose trigger the model does not yet know) and it penalises honest contributors on inputs the
model gets wrong. A patient attacker who first contributes good samples builds reputation it can
later spend: ``decay`` shortens the memory but does not remove the problem. The sybil clustering
needs a footprint: accounts that each mislabel a different kind of input, or mix many good
samples into their contributions, stay below ``min_disagreement``.

Examples
--------
>>> import numpy as np
>>> book = ReputationBook(n_classes=2)
>>> book.update(["a", "a", "b", "b"], labels=[0, 1, 0, 0], trusted_pred=[0, 1, 1, 1], round=1)
>>> rep = book.reputation()
>>> rep["a"]["mean"], rep["b"]["mean"], rep["b"]["n"]
(0.75, 0.25, 2)
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

from .._validation import check_scalar
from ..exceptions import DataError, InvalidParameterError, NotFittedError


# --- the maths (pure functions) ---------------------------------------------------------------

def good_samples(labels: np.ndarray, trusted_pred: np.ndarray, flags: np.ndarray | None = None) -> np.ndarray:
    """Eq. 1: True where the label agrees with the trusted model and no detector flagged it."""
    good = np.asarray(labels) == np.asarray(trusted_pred)
    if flags is not None:
        good &= ~np.asarray(flags, dtype=bool)
    return good


def beta_posterior(good: np.ndarray, bad: np.ndarray, prior_alpha: float = 1.0,
                   prior_beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 2-3: ``(alpha, beta)`` from (weighted) counts of good and bad samples.

    Examples
    --------
    >>> beta_posterior(np.array([3.0]), np.array([1.0]))
    (array([4.]), array([2.]))
    """
    return prior_alpha + np.asarray(good, dtype=np.float64), prior_beta + np.asarray(bad, dtype=np.float64)


def posterior_mean(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Eq. 4: ``alpha / (alpha + beta)``."""
    alpha, beta = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    return alpha / (alpha + beta)


def credible_bounds(alpha: np.ndarray, beta: np.ndarray, credibility: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 5-6: one-sided lower and upper credible bounds of ``Beta(alpha, beta)`` at
    ``credibility`` (``ppf(1 - credibility)`` and ``ppf(credibility)``).

    Examples
    --------
    >>> lo, hi = credible_bounds(np.array([1.0]), np.array([1.0]), 0.95)  # the uniform prior
    >>> round(float(lo[0]), 6), round(float(hi[0]), 6)
    (0.05, 0.95)
    """
    from scipy.stats import beta as beta_dist

    return (beta_dist.ppf(1.0 - credibility, alpha, beta), beta_dist.ppf(credibility, alpha, beta))


def disagreement_vectors(patterns: np.ndarray) -> np.ndarray:
    """Eq. 7: each contributor's off-diagonal ``(trusted prediction, label)`` counts divided by
    their sample count; ``patterns`` has shape ``(n_contributors, K, K)`` (counts of samples the
    trusted model predicts ``p`` and the contributor labels ``l`` at ``[:, p, l]``). Returns
    shape ``(n_contributors, K * K)`` with zeros on the diagonal cells."""
    patterns = np.asarray(patterns, dtype=np.float64)
    n, k, _ = patterns.shape
    totals = patterns.reshape(n, -1).sum(axis=1)
    off = patterns * (1.0 - np.eye(k))[None]
    return off.reshape(n, -1) / np.maximum(totals, 1.0)[:, None]


def cosine_similarity_matrix(V: np.ndarray) -> np.ndarray:
    """Eq. 8: pairwise cosine similarity of the rows of ``V`` (0 for an all-zero row)."""
    V = np.asarray(V, dtype=np.float64)
    norms = np.linalg.norm(V, axis=1)
    U = V / np.where(norms > 0, norms, 1.0)[:, None]
    return U @ U.T


def group_by_similarity(V: np.ndarray, rates: np.ndarray, *, min_disagreement: float,
                        min_similarity: float, min_size: int) -> list[np.ndarray]:
    """The sybil groups as arrays of row indices: rows with ``rates >= min_disagreement``,
    linked when their cosine similarity is ``>= min_similarity``, connected components of at
    least ``min_size`` rows (largest first, ties by first row)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    cand = np.flatnonzero(np.asarray(rates) >= min_disagreement)
    if cand.size < min_size:
        return []
    adj = cosine_similarity_matrix(np.asarray(V)[cand]) >= min_similarity
    _, comp = connected_components(csr_matrix(adj), directed=False)
    groups = [cand[comp == c] for c in np.unique(comp)]
    groups = [g for g in groups if g.size >= min_size]
    return sorted(groups, key=lambda g: (-g.size, int(g[0])))


# --- the book ---------------------------------------------------------------------------------

class ReputationBook:
    """Reputation per contributor, accumulated over rounds (see the module docstring's model).

    Parameters
    ----------
    n_classes : int
        Number of classes (the disagreement patterns are ``n_classes x n_classes``).
    prior_alpha, prior_beta : float, default=1.0
        The Beta prior (1, 1: uniform, a new contributor's reputation is 0.5).
    credibility : float, default=0.95
        The one-sided credibility of :meth:`reputation`'s ``lower`` and ``upper`` bounds.
    decay : float, default=1.0
        Evidence gathered before a round is multiplied by ``decay`` when the round's update
        arrives (1: never forget).

    Attributes
    ----------
    good_, bad_ : dict of str -> float
        Accumulated (decayed, weighted) good and bad evidence per contributor.
    verified_counts : dict of str -> int
        Samples per contributor that agreed with the trusted model and were not flagged
        (unweighted, never decayed).
    n_samples_ : dict of str -> int
    first_round_, last_round_ : dict of str -> int
        The round a contributor was first and last seen in.

    Examples
    --------
    >>> book = ReputationBook(n_classes=2, credibility=0.9)
    >>> book.update(["x"] * 4, labels=[1, 1, 1, 0], trusted_pred=[1, 1, 1, 1], round=0)
    >>> r = book.reputation()["x"]
    >>> round(r["mean"], 4), round(r["lower"], 4), r["n"], book.verified_counts["x"]
    (0.6667, 0.4161, 4, 3)
    """

    def __init__(self, *, n_classes: int, prior_alpha: float = 1.0, prior_beta: float = 1.0,
                 credibility: float = 0.95, decay: float = 1.0) -> None:
        check_scalar(n_classes, "n_classes", numbers.Integral, low=2)
        check_scalar(prior_alpha, "prior_alpha", numbers.Real, low=0.0, low_inclusive=False)
        check_scalar(prior_beta, "prior_beta", numbers.Real, low=0.0, low_inclusive=False)
        check_scalar(credibility, "credibility", numbers.Real, low=0.5, high=1.0, high_inclusive=False)
        check_scalar(decay, "decay", numbers.Real, low=0.0, high=1.0, low_inclusive=False)
        self.n_classes = int(n_classes)
        self.prior_alpha, self.prior_beta = float(prior_alpha), float(prior_beta)
        self.credibility, self.decay = float(credibility), float(decay)
        self.good_: dict[str, float] = {}
        self.bad_: dict[str, float] = {}
        self.verified_counts: dict[str, int] = {}
        self.n_samples_: dict[str, int] = {}
        self.first_round_: dict[str, int] = {}
        self.last_round_: dict[str, int] = {}
        self._patterns: dict[str, np.ndarray] = {}
        self._round: int | None = None

    # -- evidence ------------------------------------------------------------------------------

    def update(self, contributors: Iterable[Any], labels: Any, trusted_pred: Any, flags: Any = None, *,
               round: int = 0, weights: Any = None) -> None:
        """Add one round of samples: who sent each, its label, the trusted model's prediction,
        and optionally the detectors' flags (True = suspicious) and sample weights.

        Several calls with the same ``round`` accumulate without decaying in between.
        """
        ids = np.asarray([str(c) for c in contributors], dtype=object)
        labels = np.asarray(labels)
        pred = np.asarray(trusted_pred)
        n = ids.size
        if labels.shape != (n,) or pred.shape != (n,):
            raise DataError(f"contributors, labels and trusted_pred must be 1-D of one length; got "
                            f"{n}, {labels.shape} and {pred.shape}")
        if flags is not None:
            flags = np.asarray(flags, dtype=bool)
            if flags.shape != (n,):
                raise DataError(f"flags must have one entry per sample ({n}); got shape {flags.shape}")
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise DataError(f"weights must be {n} finite non-negative numbers")
        k = self.n_classes
        for name, arr in (("labels", labels), ("trusted_pred", pred)):
            if n and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= k):
                raise DataError(f"{name} must be class indices in 0..{k - 1}")
        check_scalar(round, "round", numbers.Integral, low=0)
        if self._round is not None and round < self._round:
            raise InvalidParameterError(f"round must not go back in time; got {round} after {self._round}")
        if self._round is not None and round > self._round and self.decay < 1.0:
            for c in self.good_:
                self.good_[c] *= self.decay ** (round - self._round)
                self.bad_[c] *= self.decay ** (round - self._round)
        self._round = int(round)
        if n == 0:
            return
        uniq, inv = np.unique(ids, return_inverse=True)
        good = good_samples(labels, pred, flags)
        m = uniq.size
        g = np.bincount(inv, weights=w * good, minlength=m)
        b = np.bincount(inv, weights=w * ~good, minlength=m)
        ver = np.bincount(inv, weights=good.astype(np.float64), minlength=m)
        cnt = np.bincount(inv, minlength=m)
        pat = np.bincount(inv * k * k + pred * k + labels, minlength=m * k * k).reshape(m, k, k)
        for j, c in enumerate(uniq):
            self.good_[c] = self.good_.get(c, 0.0) + float(g[j])
            self.bad_[c] = self.bad_.get(c, 0.0) + float(b[j])
            self.verified_counts[c] = self.verified_counts.get(c, 0) + int(ver[j])
            self.n_samples_[c] = self.n_samples_.get(c, 0) + int(cnt[j])
            self.first_round_.setdefault(c, int(round))
            self.last_round_[c] = int(round)
            self._patterns[c] = self._patterns.get(c, np.zeros((k, k), dtype=np.int64)) + pat[j]

    # -- what it says --------------------------------------------------------------------------

    @property
    def contributors(self) -> list[str]:
        """Every contributor seen, sorted."""
        return sorted(self.good_)

    def posterior(self, contributors: Iterable[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``(ids, alpha, beta)`` for ``contributors`` (default all; unseen ones get the prior)."""
        ids = self.contributors if contributors is None else [str(c) for c in contributors]
        good = np.array([self.good_.get(c, 0.0) for c in ids])
        bad = np.array([self.bad_.get(c, 0.0) for c in ids])
        alpha, beta = beta_posterior(good, bad, self.prior_alpha, self.prior_beta)
        return ids, alpha, beta

    def reputation(self, contributors: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """Per contributor: ``mean`` (eq. 4), ``lower`` and ``upper`` credible bounds
        (eqs. 5-6), ``alpha``, ``beta``, ``n`` (samples) and ``verified``."""
        ids, alpha, beta = self.posterior(contributors)
        if not ids:
            return {}
        mean = posterior_mean(alpha, beta)
        lo, hi = credible_bounds(alpha, beta, self.credibility)
        return {c: {"mean": float(mean[j]), "lower": float(lo[j]), "upper": float(hi[j]),
                    "alpha": float(alpha[j]), "beta": float(beta[j]), "n": self.n_samples_.get(c, 0),
                    "verified": self.verified_counts.get(c, 0)} for j, c in enumerate(ids)}

    def patterns(self, contributors: Iterable[str] | None = None) -> np.ndarray:
        """Counts ``(n, K, K)``: samples the trusted model predicted ``p`` and the contributor
        labelled ``l``, at ``[:, p, l]``."""
        ids = self.contributors if contributors is None else [str(c) for c in contributors]
        k = self.n_classes
        if not ids:
            return np.zeros((0, k, k), dtype=np.int64)
        return np.stack([self._patterns.get(c, np.zeros((k, k), dtype=np.int64)) for c in ids])

    def sybil_groups(self, *, min_disagreement: float = 0.5, min_similarity: float = 0.9, min_size: int = 2,
                     min_samples: int = 1, new_since: int | None = None) -> list[set[str]]:
        """Contributors whose disagreements with the trusted model look alike (eqs. 7-8).

        Parameters
        ----------
        min_disagreement : float, default=0.5
            A contributor is a candidate when at least this fraction of their samples disagree.
        min_similarity : float, default=0.9
            Candidates are linked when their disagreement vectors' cosine similarity is at least
            this (1: the same wrong labels on the same predicted classes, in the same proportions).
        min_size : int, default=2
            The smallest group reported.
        min_samples : int, default=1
            Contributors with fewer samples are not candidates.
        new_since : int, optional
            Only contributors first seen in this round or later (the new accounts).

        Returns
        -------
        list of set of str
            The groups, largest first.
        """
        check_scalar(min_disagreement, "min_disagreement", numbers.Real, low=0.0, high=1.0, low_inclusive=False)
        check_scalar(min_similarity, "min_similarity", numbers.Real, low=-1.0, high=1.0)
        check_scalar(min_size, "min_size", numbers.Integral, low=2)
        check_scalar(min_samples, "min_samples", numbers.Integral, low=1)
        ids = [c for c in self.contributors if self.n_samples_[c] >= min_samples
               and (new_since is None or self.first_round_[c] >= new_since)]
        if not ids:
            return []
        V = disagreement_vectors(self.patterns(ids))
        groups = group_by_similarity(V, V.sum(axis=1), min_disagreement=min_disagreement,
                                     min_similarity=min_similarity, min_size=min_size)
        return [{ids[i] for i in g} for g in groups]

    def check_seen(self, contributor: str) -> None:
        """Raise :class:`~poisonlab.exceptions.NotFittedError` for a contributor never seen."""
        if str(contributor) not in self.good_:
            raise NotFittedError(f"contributor {contributor!r} has no evidence in this book")


def sybil_groups(book: ReputationBook, **kwargs: Any) -> list[set[str]]:
    """:meth:`ReputationBook.sybil_groups` as a function."""
    return book.sybil_groups(**kwargs)
