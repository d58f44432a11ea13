"""Certificates of partition ensembles, as pure functions of the votes.

A partition ensemble trains ``k`` base models on disjoint parts of the training set; an attacker
who inserts, removes (or, for SS-DPA, relabels) ``r`` training samples changes at most ``r``
base models, each arbitrarily. A certificate is the largest ``r`` for which *no* choice of ``r``
changed models can change the ensemble's prediction on an input.

Vote statistics per input (what :meth:`poisonlab.models.ensemble.ModelStack.vote_statistics`
returns):

* ``counts[i, c]`` -- how many base models predict class ``c`` on input ``i``;
* ``pairwise[i, a, b]`` -- how many base models rank ``a`` above ``b`` (logit of ``a`` larger,
  or equal and ``a < b``); Run-off Election's second round reads it.

Ties always go to the smaller label.

Examples
--------
>>> import numpy as np
>>> pred, radius = dpa_radius(np.array([[5, 2, 0], [3, 3, 0]]))
>>> pred.tolist(), radius.tolist()      # (5 - (2 + 0)) // 2 = 1; (3 - (3 + 1[1 < 0])) // 2 = 0
([0, 0], [1, 0])
>>> certified_accuracy(pred, radius, np.array([0, 1]), [0, 1]).tolist()
[0.5, 0.5]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

from ...exceptions import DataError, InvalidParameterError

#: What a certificate's radius counts.
THREATS = ("insertion_removal", "label_flip")
#: The aggregation a certificate certifies.
METHODS = ("dpa", "roe")


def _counts(counts: Any) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 2 or c.shape[1] < 2 or not np.issubdtype(c.dtype, np.integer) or (c < 0).any():
        raise DataError(f"counts must be a non-negative int array (n_inputs, n_classes >= 2); got "
                        f"{c.dtype} of shape {c.shape}")
    return c.astype(np.int64)


def plurality_vote(counts: Any) -> np.ndarray:
    """The class with the most votes, ties to the smaller label (DPA's aggregation)."""
    return _counts(counts).argmax(axis=1)   # argmax returns the first maximum: the smaller label


def _flip_cost(top: np.ndarray, top_label: np.ndarray, other: np.ndarray,
               other_label: np.ndarray) -> np.ndarray:
    """Changed base models needed for ``other`` to overtake ``top`` when each changed model
    moves one vote from ``top`` to ``other``: the least ``t >= 0`` with
    ``other + t > top - t``, or ``==`` and ``other_label < top_label``."""
    gap = top - other - (other_label < top_label)       # other wins iff 2t > gap
    return np.maximum(gap // 2 + 1, 0)


def dpa_radius(counts: Any) -> tuple[np.ndarray, np.ndarray]:
    """Deep Partition Aggregation's prediction and certified radius (Levine & Feizi, ICLR 2021,
    Theorem 1).

    With ``n_c`` votes per class and the plurality class ``c*``:

        radius = floor((n_c* - max_{c != c*} (n_c + 1[c < c*])) / 2)

    Each insertion or removal changes one partition, hence one base model's vote, so at most
    ``radius`` of them cannot change the plurality: this is exact (``radius + 1`` changed models
    can always flip it, by moving votes from ``c*`` to the best runner-up).
    """
    c = _counts(counts)
    n, C = c.shape
    pred = c.argmax(axis=1)
    top = c[np.arange(n), pred]
    labels = np.arange(C)
    rival = c + (labels[None, :] < pred[:, None])
    rival[np.arange(n), pred] = np.iinfo(np.int64).min
    return pred, (top - rival.max(axis=1)) // 2


def _pairwise(pairwise: Any, counts: np.ndarray) -> np.ndarray:
    p = np.asarray(pairwise)
    if p.shape != counts.shape + (counts.shape[1],) or not np.issubdtype(p.dtype, np.integer):
        raise DataError(f"pairwise must be an int array of shape {counts.shape + (counts.shape[1],)}; "
                        f"got {p.dtype} of shape {p.shape}")
    return p.astype(np.int64)


def _top_two(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Round one of Run-off Election: the two classes with most votes (ties to the smaller)."""
    order = np.argsort(-counts, axis=1, kind="stable")     # stable: equal counts keep label order
    return order[:, 0], order[:, 1]


def run_off_vote(counts: Any, pairwise: Any) -> np.ndarray:
    """Run-off Election's prediction (Rezaei et al., ICML 2023, Algorithm 1): round one keeps
    the two classes with most votes ``c1, c2``; in round two every base model votes for whichever
    of the two it ranks higher (``pairwise``); the majority wins, ties to the smaller label."""
    c = _counts(counts)
    p = _pairwise(pairwise, c)
    c1, c2 = _top_two(c)
    rows = np.arange(len(c))
    v1, v2 = p[rows, c1, c2], p[rows, c2, c1]
    return np.where((v1 > v2) | ((v1 == v2) & (c1 < c2)), c1, c2)


def roe_radius(counts: Any, pairwise: Any) -> tuple[np.ndarray, np.ndarray]:
    """Run-off Election's prediction and a certified radius (Rezaei et al., ICML 2023, Sec. 4,
    DPA+ROE), in changed base models (= insertions/removals for DPA partitions).

    Let ``w`` be the winner and ``l`` the other finalist. A changed base model may vote anything
    in round one and rank the classes in any order in round two. The winner changes only if

    (A) ``w`` reaches round two against some ``c`` and loses: ``c`` must beat ``w`` head to head,
        which costs ``T_pair(w, c) = flip cost of the round-two gap``; if ``c != l`` it must also
        overtake ``l`` in round one, ``T_1(l, c)``: a lower bound is
        ``max(T_pair(w, c), T_1(l, c))`` (``T_pair(w, l)`` for ``c = l``);
    (B) ``w`` is knocked out in round one: two classes must rank above it. With ``need_a`` the
        votes class ``a`` lacks (``n_w - n_a - 1[a < w] + 1``, at most 0 if it already ranks
        above), and the two smallest needs ``n1 <= n2``, ``t`` changed models (each removing one
        vote from ``w`` and adding one elsewhere) suffice only if
        ``max(0, n1 - t) + max(0, n2 - t) <= t``: ``T_B = max(ceil(n2 / 2), ceil((n1 + n2) / 3))``.

    ``radius = min(T_A, T_B) - 1``: fewer changed models than any of these costs cannot change
    the prediction (sound; tested against brute force over every set of changed models). Each
    flip cost is ``floor(gap / 2) + 1`` with ties broken as the vote breaks them.
    """
    c = _counts(counts)
    p = _pairwise(pairwise, c)
    n, C = c.shape
    rows = np.arange(n)
    pred = run_off_vote(c, p)
    c1, c2 = _top_two(c)
    loser = np.where(pred == c1, c2, c1)
    labels = np.broadcast_to(np.arange(C), (n, C))
    w_col, l_col = pred[:, None], loser[:, None]
    # (A) head to head: w keeps p[w, c] models, c has p[c, w]
    t_pair = _flip_cost(p[rows[:, None], w_col, labels], w_col, p[rows[:, None], labels, w_col], labels)
    # c overtakes l in round one (0 for c = l)
    t_round1 = _flip_cost(c[rows, loser][:, None], l_col, c, labels)
    t_round1 = np.where(labels == l_col, 0, t_round1)
    t_a = np.maximum(t_pair, t_round1)
    t_a = np.where(labels == w_col, np.iinfo(np.int64).max, t_a).min(axis=1)
    # (B) two classes above w in round one
    need = c[rows, pred][:, None] - c - (labels < w_col) + 1
    need = np.where(labels == w_col, np.iinfo(np.int64).max // 4, np.maximum(need, 0))
    two = np.sort(need, axis=1)[:, :2]
    n1, n2 = two[:, 0], two[:, 1]
    t_b = np.maximum(-(-n2 // 2), -(-(n1 + n2) // 3))
    return pred, np.minimum(t_a, t_b) - 1


def certified_accuracy(prediction: Any, radius: Any, y: Any, radii: Sequence[int]) -> np.ndarray:
    """Certified accuracy at each radius ``r``: the share of inputs predicted correctly with a
    certificate of at least ``r`` (the curve DPA's paper plots)."""
    pred, rad, yy = np.asarray(prediction), np.asarray(radius), np.asarray(y)
    if not (pred.shape == rad.shape == yy.shape) or pred.ndim != 1:
        raise DataError(f"prediction, radius and y must be 1-D of one length; got {pred.shape}, "
                        f"{rad.shape}, {yy.shape}")
    ok = pred == yy
    r = np.asarray(radii)
    return (ok[None, :] & (rad[None, :] >= r[:, None])).mean(axis=1)


def median_certified_radius(prediction: Any, radius: Any, y: Any) -> int:
    """The largest radius at which at least half of the inputs are certified correct (DPA's
    "median certified robustness"); -1 when fewer than half are even predicted correctly."""
    pred, rad, yy = np.asarray(prediction), np.asarray(radius), np.asarray(y)
    score = np.sort(np.where(pred == yy, rad, -1))[::-1]
    return int(score[(len(score) + 1) // 2 - 1]) if len(score) else -1


@dataclass(frozen=True)
class Certificate:
    """Per-input predictions and certified radii of a partition ensemble.

    Attributes
    ----------
    prediction, radius : ndarray (n,)
        ``radius[i]``: how many training-set changes of kind ``threat`` provably cannot change
        ``prediction[i]``.
    threat : {"insertion_removal", "label_flip"}
        What the radius counts: inserted or removed samples (DPA: the partition is a hash of
        the input, so any change touches one partition) or flipped labels (SS-DPA: its features
        see every input, so only labels may change). A radius of one kind says nothing about
        the other, and asking for it is refused.
    method : {"dpa", "roe"}
        Plurality vote (DPA) or Run-off Election.
    n_models : int
    """

    prediction: np.ndarray
    radius: np.ndarray
    threat: str
    method: str
    n_models: int
    _HINTS: ClassVar[dict[str, str]] = {
        "label_flip": "an insertion/removal certificate (DPA) does not count label flips: train SSDPA "
                      "for a label-flip radius (one flip is one removal plus one insertion, so radius // 2 "
                      "flips is all this certificate implies)",
        "insertion_removal": "a label-flip certificate (SS-DPA) does not count insertions or removals: its "
                             "unsupervised features see every training input; train DeepPartitionAggregation "
                             "for an insertion/removal radius",
    }
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.threat not in THREATS:
            raise InvalidParameterError(f"threat must be one of {THREATS}; got {self.threat!r}")
        if self.method not in METHODS:
            raise InvalidParameterError(f"method must be one of {METHODS}; got {self.method!r}")

    def radius_for(self, threat: str) -> np.ndarray:
        """The radii, after checking that they count ``threat``."""
        if threat not in THREATS:
            raise InvalidParameterError(f"threat must be one of {THREATS}; got {threat!r}")
        if threat != self.threat:
            raise InvalidParameterError(f"threat={threat!r} requested from a {self.threat} certificate: "
                                        f"{self._HINTS[threat]}")
        return self.radius

    def certified_accuracy(self, y: Any, radii: Sequence[int], *, threat: str | None = None) -> np.ndarray:
        """:func:`certified_accuracy` at ``radii`` (``threat``, when given, must match)."""
        rad = self.radius if threat is None else self.radius_for(threat)
        return certified_accuracy(self.prediction, rad, y, radii)

    def median_radius(self, y: Any, *, threat: str | None = None) -> int:
        rad = self.radius if threat is None else self.radius_for(threat)
        return median_certified_radius(self.prediction, rad, y)


__all__ = ("Certificate", "METHODS", "THREATS", "certified_accuracy", "dpa_radius", "median_certified_radius",
           "plurality_vote", "roe_radius", "run_off_vote")
