"""Calibrated evidence (defenses.data.evidence): the tail-excess rule, the evidence scale, the
strongest-evidence quarantine, and every sample-level detector's own rule on that scale."""

import numpy as np
import pytest

from poisonlab import registry
from poisonlab.defenses.data import KNNLabelConsistency, RobustOutliers, SpectralSignatures
from poisonlab.defenses.data.evidence import (
    FAMILIES,
    MIN_CLASSES,
    calibrated_evidence,
    quarantine_by_evidence,
    strongest_evidence,
    tail_excess_cut,
)

from ._helpers import _planted


def _classes(n_classes=5, n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n)
    return rng.exponential(size=len(y)), y


def test_tail_excess_flags_exactly_a_class_s_excess_of_high_scores():
    s, y = _classes()
    s[:40] = 20.0 + np.arange(40)  # class 0: 40 scores far above every other class's
    cut = tail_excess_cut(s, y)
    flagged = s > cut
    # the 40, and at most the few natural scores of class 0 beyond every other class's (FDR 0.1)
    assert flagged[:40].all() and flagged[40:].sum() <= 4 and not flagged[y != 0].any()
    # the cut of a class is one of its own scores (or below its lowest); within a class, ranks kept
    assert np.all(cut[y == 0] == cut[0])


def test_tail_excess_flags_nothing_without_an_excess_or_with_too_few_classes():
    s, y = _classes()
    assert not (s > tail_excess_cut(s, y)).any(), "the same distribution in every class: no excess"
    # a heavy tail shared by every class is the null, not an excess
    heavy = s ** 3
    assert not (heavy > tail_excess_cut(heavy, y)).any()
    s2, y2 = _classes(n_classes=MIN_CLASSES - 1)
    s2[:40] = 100.0
    assert not (s2 > tail_excess_cut(s2, y2)).any(), "too few classes to calibrate on"


def test_tail_excess_needs_a_significant_excess():
    s, y = _classes()
    s[0] = 1e6  # one extreme sample: an FDR of 1 (expected ~0.8 such samples / 1 found)
    assert not (s > tail_excess_cut(s, y)).any()


def test_calibrated_evidence_by_hand():
    s = np.array([0.0, 1.0, 2.0, 4.0])  # median 1.5, cut 2: unit 0.5
    assert np.allclose(calibrated_evidence(s, 2.0), [-3.0, -1.0, 1.0, 5.0])
    # per group: each group's median sets its unit (group 0: median -1, unit 1; group 1: median
    # 1 lies above the cut, so the unit is 1)
    g = np.array([0, 0, 1, 1])
    e = calibrated_evidence(np.array([-2.0, 0.0, -1.0, 3.0]), 0.0, groups=g)
    assert np.allclose(e, [-1.0, 1.0, 0.0, 4.0])
    # a cut at or below the median: unit 1
    assert np.allclose(calibrated_evidence(np.zeros(3), 0.0), [1.0, 1.0, 1.0])


def test_strongest_evidence_and_quarantine():
    E = np.array([[0.5, 3.0, 0.9, 1.2],
                  [2.0, 0.1, 0.8, 1.2]])
    best, by = strongest_evidence(E, ["a", "b"])
    assert np.allclose(best, [2.0, 3.0, 0.9, 1.2]) and list(by) == ["b", "a", "a", "a"]
    assert quarantine_by_evidence(best).tolist() == [True, True, False, True]
    assert quarantine_by_evidence(best, budget=2).tolist() == [True, True, False, False]


def test_every_sample_level_detector_declares_a_family():
    for e in registry.entries("detector", stage="data", unit="sample"):
        assert registry.get("detector", e.name).family in (*FAMILIES, "combined"), e.name


# subset_disagreement trains ten models: its evidence is the scan's fallback, calibrated_evidence
@pytest.mark.parametrize("name", sorted(e.name for e in registry.entries("detector", stage="data", unit="sample")
                                        if e.name not in ("combined", "subset_disagreement")))
def test_every_detector_s_evidence_is_above_1_exactly_where_its_own_rule_flags(name):
    cls = registry.get("detector", name)
    X, y, _ = _planted(n_per_class=200, n_poison=30, shift=4.0)
    y = y.copy()
    y[-5:] = 0  # a few flipped labels for the label detectors
    params = {"contamination": "auto"} if "contamination" in cls._param_names() else {}
    det = cls(**params).fit(X, y)
    assert det.evidence_.shape == det.scores_.shape
    assert np.array_equal(det.evidence_ > 1.0, det.flags_)


@pytest.mark.parametrize("cls", [RobustOutliers, SpectralSignatures])
def test_auto_rule_finds_a_planted_cluster_and_nothing_on_clean_classes(cls):
    X, y, poison = _planted(n_per_class=500, n_poison=60, shift=4.0)
    det = cls(contamination="auto").fit(X, y)
    assert det.flags_[poison].mean() >= 0.9  # recall floor
    assert det.flags_[~poison].mean() <= 0.01
    rng = np.random.default_rng(1)
    clean = rng.normal(size=X.shape) + 5 * np.eye(5, X.shape[1])[y]
    assert not cls(contamination="auto").fit(clean, y).flags_.any()


def test_knn_label_auto_is_the_majority_vote():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))]
    y = np.repeat([0, 1], 100)
    y[:5] = 1
    det = KNNLabelConsistency(n_neighbors=10, contamination="auto").fit(X, y)
    assert det.threshold_ == 0.5
    assert det.flags_[:5].all() and det.flags_.sum() == 5
