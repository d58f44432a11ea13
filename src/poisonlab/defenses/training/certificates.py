"""Certificates of partition ensembles, as pure functions of the votes.

A partition ensemble trains ``k`` base models on disjoint parts of the training set; an attacker
who inserts, removes (or, for SS-DPA, relabels) ``r`` training samples changes at most ``r``
base models, each arbitrarily. A certificate is the largest ``r`` for which *no* choice of ``r``
changed models can change the ensemble's prediction on an input.

Finite Aggregation (FA; Wang, Levine & Feizi, ICML 2022) hashes the training set into ``k * d``
*buckets* and trains ``k * d`` base models, each on ``d`` buckets, so that every bucket feeds
``d`` models (``spread[b]``: the models bucket ``b`` feeds). One insertion or removal changes
one bucket, hence up to ``d`` models; :func:`fa_radius` (plurality vote) and
:func:`fa_roe_radius` (Run-off Election over the same models, Rezaei et al.'s FA+ROE) count
changed *buckets*, i.e. insertions/removals. They read every model's vote (``votes[i, m]``) or
scores (``scores[i, m, c]``), not only the totals, because which models share a bucket matters.

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
#: The aggregation a certificate certifies: plurality over disjoint partitions (DPA), Run-off
#: Election over them (ROE), plurality over Finite Aggregation's overlapping models (FA), Run-off
#: Election over those (FA+ROE).
METHODS = ("dpa", "roe", "fa", "fa_roe")


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


# --- Finite Aggregation --------------------------------------------------------------------------

def _spread(spread: Any, n_models: int) -> np.ndarray:
    s = np.asarray(spread)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < 1 or not np.issubdtype(s.dtype, np.integer):
        raise DataError(f"spread must be an int array (n_buckets, d) of model ids; got {s.dtype} of shape {s.shape}")
    if s.min() < 0 or s.max() >= n_models:
        raise DataError(f"spread must hold model ids in [0, {n_models}); got values in [{s.min()}, {s.max()}]")
    return s.astype(np.int64)


def _min_buckets(gap: np.ndarray, deltas: np.ndarray, vmax: int) -> np.ndarray:
    """The fewest buckets whose summed reductions can exceed ``gap`` (make it negative): 0 where
    ``gap < 0``, else ``1 + max{r : sum of the r largest deltas <= gap}`` (``n_buckets + 1`` when
    even all of them cannot). ``deltas[i, b]`` in ``[0, vmax]``: an upper bound on what changing
    bucket ``b`` takes off input ``i``'s gap, so the sum of the ``r`` largest bounds what any ``r``
    buckets take off (FA's greedy, Wang et al. 2022, Theorem 2). Counting sort over the values."""
    n = deltas.shape[0]
    hist = np.bincount((np.arange(n)[:, None] * (vmax + 1) + deltas).ravel(),
                       minlength=n * (vmax + 1)).reshape(n, vmax + 1)
    rem = gap.astype(np.int64).copy()
    taken = np.zeros(n, dtype=np.int64)
    going = rem >= 0
    for v in range(vmax, 0, -1):
        cnt = hist[:, v]
        take = np.where(going, np.minimum(cnt, np.maximum(rem, 0) // v), 0)
        taken += take
        rem -= take * v
        going &= take == cnt
    taken += np.where(going, hist[:, 0], 0)
    return np.where(gap < 0, 0, taken + 1)


def _bucket_class_counts(votes: np.ndarray, spread: np.ndarray, C: int) -> np.ndarray:
    """``H[i, b, c]``: how many of the models bucket ``b`` feeds vote ``c`` on input ``i``."""
    n, K = votes.shape[0], spread.shape[0]
    H = np.zeros((n, K, C), dtype=np.int32)
    rows = np.arange(n)[:, None]
    cols = np.arange(K)[None, :]
    for j in range(spread.shape[1]):      # one model per (input, bucket) per j: no repeated index
        H[rows, cols, votes[:, spread[:, j]]] += 1
    return H


def _fa_chunks(n: int, K: int, C: int) -> int:
    """Inputs per chunk: keeps the per-bucket arrays near 32 MB."""
    return max(1, (8 * 1024 * 1024) // max(1, K * C))


def fa_radius(votes: Any, spread: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite Aggregation's prediction and certified radius (Wang, Levine & Feizi, "Improved
    Certified Defenses against Data Poisoning with (Deterministic) Finite Aggregation", ICML 2022,
    Theorem 2), in insertions/removals.

    Parameters
    ----------
    votes : int array (n_inputs, n_models)
        Each base model's predicted class on each input.
    spread : int array (n_buckets, d)
        ``spread[b]``: the models trained on bucket ``b`` (FA's ``h_spr``; :func:`~poisonlab.
        defenses.training.finite_aggregation.spread_assignment`).
    n_classes : int >= 2

    Returns
    -------
    prediction, radius : int arrays (n_inputs,)
        Plurality over all models (ties to the smaller label) and the certificate.

    Notes
    -----
    With ``N_c`` votes per class and prediction ``w``, class ``c`` wins once the gap
    ``N_w - N_c - 1[c < w]`` turns negative. Changing model ``m`` (to vote ``c``) takes at most
    ``1 + 1[f_m = w] - 1[f_m = c]`` off that gap, so changing bucket ``b`` takes at most
    ``s_b(c) = sum over m in spread[b] of (1 + 1[f_m = w] - 1[f_m = c])``. The radius is the
    largest ``r`` such that, for every ``c != w``, the ``r`` largest ``s_b(c)`` sum to at most the
    gap: no ``r`` changed buckets (= insertions/removals, each touching one bucket) can flip the
    prediction. Sound (it ignores that buckets share models, which only overestimates the
    damage); exact for ``d = 1``, where it is DPA's certificate (:func:`dpa_radius`); for ``d > 1``
    a lower bound (tested against brute force over every set of changed buckets).

    Examples
    --------
    >>> import numpy as np
    >>> spread = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])      # 4 buckets, 4 models, d = 2
    >>> votes = np.array([[0, 0, 0, 1]])                          # 3 votes for 0, 1 for 1
    >>> fa_radius(votes, spread, 2)[1].tolist()   # gap 2; a bucket feeding two 0-voters takes 4
    [0]
    >>> fa_radius(np.array([[0, 0, 0, 0]]), spread, 2)[1].tolist()   # gap 4 - 0 - 0: one bucket (4) fits
    [1]
    """
    v = np.asarray(votes)
    if v.ndim != 2 or v.shape[1] < 1 or not np.issubdtype(v.dtype, np.integer):
        raise DataError(f"votes must be an int array (n_inputs, n_models); got {v.dtype} of shape {v.shape}")
    C = int(n_classes)
    if C < 2:
        raise InvalidParameterError(f"n_classes must be >= 2; got {n_classes}")
    if v.size and (v.min() < 0 or v.max() >= C):
        raise DataError(f"votes must be classes in [0, {C}); got values in [{v.min()}, {v.max()}]")
    v = v.astype(np.int64)
    n, M = v.shape
    s = _spread(spread, M)
    K, d = s.shape
    pred = np.empty(n, dtype=np.int64)
    radius = np.empty(n, dtype=np.int64)
    step = _fa_chunks(n, K, C)
    for i0 in range(0, n, step):
        vc = v[i0:i0 + step]
        m = len(vc)
        rows = np.arange(m)
        counts = np.zeros((m, C), dtype=np.int64)
        np.add.at(counts, (rows[:, None], vc), 1)
        w = counts.argmax(axis=1)
        H = _bucket_class_counts(vc, s, C)
        Hw = H[rows, :, w]
        best = np.full(m, np.iinfo(np.int64).max)
        for c in range(C):
            gap = counts[rows, w] - counts[:, c] - (c < w)
            t = _min_buckets(gap, d + Hw - H[:, :, c], 2 * d)
            best = np.where(w == c, best, np.minimum(best, t))
        pred[i0:i0 + m] = w
        radius[i0:i0 + m] = best - 1
    return pred, radius


def _scores(scores: Any) -> np.ndarray:
    sc = np.asarray(scores)
    if sc.ndim != 3 or sc.shape[1] < 1 or sc.shape[2] < 2 or not np.issubdtype(sc.dtype, np.number):
        raise DataError(f"scores must be a numeric array (n_inputs, n_models, n_classes >= 2); got {sc.dtype} "
                        f"of shape {sc.shape}")
    if not np.isfinite(sc).all():
        raise DataError("scores must be finite")
    return sc


def _prefers(S: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``out[i, m, c]``: model ``m`` ranks class ``a[i]`` above ``c`` on input ``i`` (score of
    ``a`` larger, or equal and ``a < c``); False for ``c = a``."""
    C = S.shape[2]
    Sa = S[np.arange(len(S)), :, a][:, :, None]
    labels = np.arange(C)[None, None, :]
    return (Sa > S) | ((Sa == S) & (a[:, None, None] < labels))


def fa_roe_radius(scores: Any, spread: Any) -> tuple[np.ndarray, np.ndarray]:
    """FA+ROE: Run-off Election over Finite Aggregation's base models, its prediction and a
    certified radius in insertions/removals (Rezaei, Kaya, Feizi et al., "Run-Off Election:
    Improved Provable Defense against Data Poisoning Attacks", ICML 2023, Sec. 4, FA+ROE; the
    bucket bounds of Wang et al., ICML 2022, Theorem 2).

    Parameters
    ----------
    scores : float array (n_inputs, n_models, n_classes)
        Every base model's logits (or any scores: only their order matters; equal scores rank
        the smaller label first, as :func:`run_off_vote`).
    spread : int array (n_buckets, d)
        The models each bucket feeds (as :func:`fa_radius`).

    Returns
    -------
    prediction, radius : int arrays (n_inputs,)
        :func:`run_off_vote` of the models and the certificate.

    Notes
    -----
    The prediction ``w`` (the other finalist: ``l``) changes only if (A) ``w`` meets some ``c``
    in round two and loses, which needs ``c`` to beat ``w`` head to head *and* (for ``c != l``)
    ``c`` to overtake ``l`` in round one; or (B) two classes ``a, b`` rank above ``w`` in round one.
    Each condition is a gap that must turn negative; changing a model takes at most

    * head to head ``w`` vs ``c`` (gap ``P[w, c] - P[c, w] - 1[c < w]``): ``2 * 1[m ranks w over c]``;
    * ``c`` overtakes ``l`` (gap ``N_l - N_c - 1[c < l]``): ``1 + 1[f_m = l] - 1[f_m = c]``;
    * ``a`` overtakes ``w`` (gap ``N_w - N_a - 1[a < w]``): ``1 + 1[f_m = w] - 1[f_m = a]``;
    * both ``a`` and ``b`` overtake ``w`` (both gaps negative, so their sum + 1 is):
      ``1 + 2 * 1[f_m = w] - 1[f_m = a] - 1[f_m = b]``,

    and a bucket at most the sum over the models it feeds. With :func:`_min_buckets` the fewest
    buckets ``T`` for each gap (greedy over the largest bucket bounds), the radius is
    ``min(min_c max(T_pair(c), T_round1(c)), min_{a, b} max(T_a, T_b, T_ab)) - 1``: fewer changed
    buckets satisfy none of the conditions. Sound (tested against brute force over every set of
    changed buckets and every ranking of the changed models); with ``d = 1`` never below
    :func:`roe_radius` (it uses each model's actual vote where ROE assumes the best case).

    Examples
    --------
    >>> import numpy as np
    >>> spread = np.array([[0], [1], [2]])                 # d = 1: three disjoint partitions
    >>> scores = np.array([[[2.0, 1.0], [2.0, 1.0], [0.0, 1.0]]])
    >>> fa_roe_radius(scores, spread)[0].tolist(), fa_roe_radius(scores, spread)[1].tolist()
    ([0], [0])
    """
    S = _scores(scores)
    n, M, C = S.shape
    s = _spread(spread, M)
    K, d = s.shape
    big = np.iinfo(np.int64).max // 4
    pred = np.empty(n, dtype=np.int64)
    radius = np.empty(n, dtype=np.int64)
    step = _fa_chunks(n, K, C)
    labels = np.arange(C)
    for i0 in range(0, n, step):
        Sc = S[i0:i0 + step]
        m = len(Sc)
        rows = np.arange(m)
        votes = Sc.argmax(axis=2)                       # first maximum: the smaller label
        counts = np.zeros((m, C), dtype=np.int64)
        np.add.at(counts, (rows[:, None], votes), 1)
        c1, c2 = _top_two(counts)
        v1 = _prefers(Sc, c1)[rows, :, c2].sum(axis=1)
        v2 = M - v1
        w = np.where((v1 > v2) | ((v1 == v2) & (c1 < c2)), c1, c2)
        lo = np.where(w == c1, c2, c1)
        pw = _prefers(Sc, w)                            # (m, M, C)
        Pw = pw.sum(axis=1)                             # models ranking w above c
        PWb = np.zeros((m, K, C), dtype=np.int32)       # ... among those bucket b feeds
        for j in range(d):
            PWb += pw[:, s[:, j], :]
        del pw
        H = _bucket_class_counts(votes, s, C)
        Hw, Hl = H[rows, :, w], H[rows, :, lo]
        Nw, Nl = counts[rows, w], counts[rows, lo]
        # (A) w meets c in round two and loses
        t_a = np.full(m, big)
        for c in range(C):
            gap_pair = Pw[:, c] - (M - Pw[:, c]) - (c < w)
            t_pair = _min_buckets(gap_pair, 2 * PWb[:, :, c], 2 * d)
            gap_1 = Nl - counts[:, c] - (c < lo)
            t_1 = np.where(lo == c, 0, _min_buckets(gap_1, d + Hl - H[:, :, c], 2 * d))
            t_a = np.where(w == c, t_a, np.minimum(t_a, np.maximum(t_pair, t_1)))
        # (B) two classes rank above w in round one
        gaps = Nw[:, None] - counts - (labels[None, :] < w[:, None])        # (m, C)
        t_one = np.stack([_min_buckets(gaps[:, a], d + Hw - H[:, :, a], 2 * d) for a in range(C)], axis=1)
        t_b = np.full(m, big)
        for a in range(C):
            for b in range(a + 1, C):
                pair_floor = np.maximum(t_one[:, a], t_one[:, b])
                live = (w != a) & (w != b) & (pair_floor < np.minimum(t_a, t_b))
                if not live.any():
                    continue
                r = np.flatnonzero(live)
                t_ab = _min_buckets(gaps[r, a] + gaps[r, b] + 1,
                                    d + 2 * Hw[r] - H[r, :, a] - H[r, :, b], 3 * d)
                t_b[r] = np.minimum(t_b[r], np.maximum(pair_floor[r], t_ab))
        pred[i0:i0 + m] = w
        radius[i0:i0 + m] = np.minimum(t_a, t_b) - 1
    return pred, radius


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
    method : {"dpa", "roe", "fa", "fa_roe"}
        Plurality vote (DPA) or Run-off Election over disjoint partitions; plurality or Run-off
        Election over Finite Aggregation's overlapping base models (the radius still counts
        insertions/removals: each touches one bucket).
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


__all__ = ("Certificate", "METHODS", "THREATS", "certified_accuracy", "dpa_radius", "fa_radius", "fa_roe_radius",
           "median_certified_radius", "plurality_vote", "roe_radius", "run_off_vote")
