"""Calibrated evidence: put the scores of different sample-level detectors on one scale and
combine them by the strongest, not by a vote.

Every detector has a decision rule of its own (``contamination="auto"``): the paper's rule where
it has one (activation clustering's size and silhouette tests, cleanlab's estimated number of
label issues, Deep k-NN's plurality vote, a conflicting duplicate), else the *tail-excess* rule
below, which calibrates a per-class score on the detector's own score distribution. The
**evidence** of a sample under one detector says how far its score lies beyond that rule's cut,
in units of the cut's distance from the bulk of the scores::

    e_i = 1 + (s_i - t) / (t - m)

with ``t`` the threshold and ``m`` the median score (of the sample's class when the threshold is
per class). ``e_i > 1`` exactly when the detector's own rule flags the sample; ``e = 2`` is twice
as far from the bulk as the cut. The scan reports, per sample, the strongest evidence, the
detector that gave it and the family of attack that detector can see
(:func:`strongest_evidence`), and quarantines the samples whose strongest evidence exceeds 1.

Why not votes: detectors see different things by design (a label check is blind to a dirty-label
backdoor whose poisons carry the label their trigger earns; a cluster test is blind to labels
flipped at random). A vote lets the blind members outvote the one that sees; a rank average lets
their random ranks dilute it. The strongest calibrated evidence keeps each detector's view and
each one's false-alarm control.

The tail-excess rule
--------------------
Backdoor poisons all carry the target's label, so the class they join has *more* high scores
than the classes without poison. Scores divided by their class median (as the per-class
detectors return them) are compared class by class with the pooled scores of the *other*
classes, which serve as the null distribution: heavy-tailed features raise every class's tail
alike and cancel out, where a parametric null (normal, chi-square) would flag them. For class
``c`` with ``n_c`` samples and the ``k`` highest scores ``>= s``::

    E_c(s) = n_c * (#{other scores >= s} + 1) / (n_other + 1)     expected count under the null
    FDR_c(s) = E_c(s) / k                                          (Storey 2002, one class)

where the null tail fraction is the upper quartile of the other classes' (a class must exceed
most of them; one naturally heavy-tailed class does not set the norm). The class's cut keeps
the largest ``k`` whose estimated false-discovery rate is at most ``fdr`` and whose excess is
significant, ``P(Poisson(E_c) >= k) <= alpha / K`` (``K`` classes, Bonferroni); a class without
such a ``k`` flags nothing. Label flips spread over every class raise no class above the
others: the label detectors see those. With fewer than :data:`MIN_CLASSES` classes the other
classes are no null (ham and spam simply differ) and the rule flags nothing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: What each family of detectors sees, and the attacks its evidence points to.
FAMILIES = {
    "cluster": "a tight group inside one class (backdoor or trigger-based clean-label poisons)",
    "outlier": "samples atypical for their class, in excess of the other classes (backdoor poisons, crude injections)",
    "label": "labels that disagree with the data (label flipping, dirty-label poisons)",
    "duplicate": "copies of a sample under another label (label flipping, duplicated submissions)",
}


#: Fewest classes the class-against-class calibrations need: with fewer, the "other classes" are
#: one or two distributions that may simply differ (ham and spam), not a null.
MIN_CLASSES = 4


def tail_excess_cut(scores: np.ndarray, groups: np.ndarray, *, fdr: float = 0.1,
                    alpha: float = 0.01, null_quantile: float = 0.75) -> np.ndarray:
    """Per-sample cut of the tail-excess rule (module docstring): for each class, the highest
    score it keeps; ``scores > cut`` flags the class's significant excess of high scores.

    Parameters
    ----------
    scores : ndarray (n,)
        Per-class comparable scores (e.g. divided by their class median), higher = more suspicious.
    groups : ndarray (n,)
        The class of each score. With fewer than :data:`MIN_CLASSES` classes there is no
        reference distribution to trust: nothing is flagged.
    fdr : float in (0, 1)
        Largest estimated false-discovery rate of the flagged part of a class.
    alpha : float in (0, 1)
        Level of the Poisson test of the excess, divided by the number of classes.
    null_quantile : float in [0, 1]
        Which of the other classes' tail fractions is the null (0.75: their upper quartile).

    Returns
    -------
    ndarray (n,)
        ``cut[i]`` for the class of sample ``i``; every class with nothing flagged gets the
        overall maximum, so that shifting scores by their cut moves all of those classes alike
        (their ranks against each other, and an AUROC over them, are kept).
    """
    from scipy.stats import poisson

    scores = np.asarray(scores, dtype=np.float64)
    groups = np.asarray(groups)
    classes = np.unique(groups)
    cut = np.empty(len(scores), dtype=np.float64)
    sorted_by_class = {c: np.sort(scores[groups == c]) for c in classes}
    top = float(scores.max()) if len(scores) else 0.0
    for c in classes:
        idx = np.flatnonzero(groups == c)
        own = sorted_by_class[c][::-1]
        cut[idx] = top
        others = [sorted_by_class[o] for o in classes if o != c]
        if len(classes) < MIN_CLASSES:
            continue
        # tail fraction of each other class at each of this class's scores; the null is their
        # upper quartile: a class must exceed most others, yet one poisoned class elsewhere (or
        # one naturally heavy tail) neither masks an excess nor passes for the norm
        tails = np.stack([(len(o) - np.searchsorted(o, own, side="left") + 1) / (len(o) + 1) for o in others])
        expected = len(own) * np.quantile(tails, null_quantile, axis=0)
        k = np.arange(1, len(own) + 1)
        # ties: a threshold cannot split equal scores, so only the last of a run of ties counts
        last = np.r_[own[1:] != own[:-1], True]
        ok = last & (expected / k <= fdr) & (poisson.sf(k - 1, expected) <= alpha / len(classes))
        if ok.any():
            kk = int(np.flatnonzero(ok)[-1])
            cut[idx] = own[kk + 1] if kk + 1 < len(own) else own[-1] - 1.0
    return cut


def calibrated_evidence(scores: np.ndarray, threshold: float, groups: np.ndarray | None = None) -> np.ndarray:
    """``1 + (s - t) / (t - m)``: a detector's scores in multiples of its own cut's distance
    from the median ``m`` (per group when given: detectors whose cut is per class shift each
    class by its cut, so ``t`` is shared and ``m`` is the class's median). Greater than 1
    exactly where ``s > t``. When the cut does not lie above the median (a rule that flags half
    of a class or more, or scores that are mostly at the cut), the unit is 1."""
    s = np.asarray(scores, dtype=np.float64)
    if groups is None:
        med = np.full(len(s), float(np.median(s)) if len(s) else 0.0)
    else:
        groups = np.asarray(groups)
        med = np.empty(len(s), dtype=np.float64)
        for c in np.unique(groups):
            idx = groups == c
            med[idx] = np.median(s[idx])
    unit = threshold - med
    unit = np.where(unit > 1e-12 * max(1.0, abs(threshold)), unit, 1.0)
    return 1.0 + (s - threshold) / unit


def strongest_evidence(evidence: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (column of ``evidence``, detectors x samples): the strongest evidence and the
    name of the detector that gave it (the first listed on ties)."""
    E = np.asarray(evidence, dtype=np.float64)
    best = np.argmax(E, axis=0)
    return E[best, np.arange(E.shape[1])], np.asarray(list(names), dtype=object)[best]


def quarantine_by_evidence(strongest: np.ndarray, *, level: float = 1.0,
                           budget: int | None = None) -> np.ndarray:
    """Samples whose strongest evidence exceeds ``level``; with a ``budget``, at most that many,
    the strongest first (ties at the budget's edge broken by position, as a stable sort)."""
    s = np.asarray(strongest, dtype=np.float64)
    out = s > level
    if budget is not None and out.sum() > budget:
        keep = np.argsort(-s, kind="stable")[:max(int(budget), 0)]
        out = np.zeros(len(s), dtype=bool)
        out[keep] = True
    return out
