"""Activation clustering calibrated on the classes (class_z), confirmed on the inputs
(exclusionary reclassification), and its oversized-class path (poisons half of their class)."""

import numpy as np
import pytest

from poisonlab.defenses.data import ActivationClustering
from poisonlab.defenses.data.activation_clustering import class_outlyingness, excess_share, relabelled_fraction


def test_class_outlyingness_by_hand():
    v = np.array([0.30, 0.10, 0.11, 0.09, 0.10, 0.12])
    z = class_outlyingness(v)
    # class 0 against [0.10, 0.11, 0.09, 0.10, 0.12]: median 0.10, MAD 0.01 -> (0.30 - 0.10) / 0.014826
    assert z[0] == pytest.approx(0.20 / (1.4826 * 0.01))
    assert np.all(np.abs(z[1:]) < 2)


def test_excess_share_by_hand():
    assert np.allclose(excess_share(np.array([200.0, 100, 100, 100])), [0.5, 0, 0, 0])
    assert np.allclose(excess_share(np.array([100.0, 100, 90, 110])), [0, 0, 0, 1 - 100 / 110])


def _world(seed=0, n=300, d=16, n_classes=6):
    """Inputs of ``n_classes`` Gaussian classes, and 'features' of a model: the inputs plus, for
    poisons, a shared trigger direction (what a backdoored model's penultimate layer does)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(n_classes, d))
    y = np.repeat(np.arange(n_classes), n)
    X = centres[y] + rng.normal(size=(len(y), d))
    return rng, centres, X, y


def test_confirmation_rejects_a_clean_odd_mode_and_keeps_dirty_label_poisons():
    rng, centres, X, y = _world()
    # class 1 has a mode of its own in the model's features only (its inputs are ordinary 1s)
    odd = np.flatnonzero(y == 1)[:40]
    feats = X.copy()
    feats[odd] += 12.0
    # 40 poisons: class-2 inputs labelled 0, and in the features a tight cluster of class 0
    P = centres[2] + rng.normal(size=(40, X.shape[1]))
    X_in = np.r_[X, P]
    feats = np.r_[feats, centres[0] + 10.0 + rng.normal(size=(40, X.shape[1]))]
    y = np.r_[y, np.zeros(40, int)]
    poison = np.r_[np.zeros(len(X), bool), np.ones(40, bool)]
    det = ActivationClustering(reduction="pca", class_z=3.0).fit(feats, y, inputs=X_in)
    assert det.flags_[poison].mean() >= 0.95
    assert not det.flags_[~poison].any()
    assert det.class_report_[0]["reclassified_share"] > 0.9 and det.class_report_[1]["reclassified_share"] < 0.1
    # without the inputs the odd mode of class 1 is as separated as the poisons: both flagged
    plain = ActivationClustering(reduction="pca", class_z=3.0).fit(feats, y)
    assert plain.flags_[odd].all() and plain.flags_[poison].all()


def test_oversized_class_half_poison_is_found_only_with_the_inputs():
    rng, centres, X, y = _world(n=200)
    # all-to-one at a high rate: 200 poisons from classes 1-5 join class 0 (half of it)
    src = rng.integers(1, 6, size=200)
    P_in = centres[src] + rng.normal(size=(200, X.shape[1]))
    trigger = rng.normal(size=X.shape[1])
    P_feat = centres[0] + 3.0 * trigger + rng.normal(size=(200, X.shape[1]))
    feats, X_in = np.r_[X, P_feat], np.r_[X, P_in]
    y = np.r_[y, np.zeros(200, int)]
    poison = np.r_[np.zeros(len(X), bool), np.ones(200, bool)]
    det = ActivationClustering(reduction="pca", class_z=3.0).fit(feats, y, inputs=X_in)
    assert det.flags_[poison].mean() >= 0.95 and det.flags_[~poison].mean() <= 0.01
    assert det.class_report_[0]["excess_share"] == pytest.approx(0.5)
    # whichever half 2-means calls the smaller, the half the inputs disown is the candidate
    assert det.class_report_[0]["excess_reclassified_share"] > 0.9
    # the paper's size test alone cannot pass a cluster holding half the class
    assert not ActivationClustering(reduction="pca").fit(feats, y).flags_[poison].any()


def test_too_few_classes_to_calibrate_flag_nothing():
    rng, centres, X, y = _world(n_classes=3)
    X[:30] += 8.0
    assert not ActivationClustering(reduction="pca", class_z=3.0).fit(X, y).flags_.any()
    assert ActivationClustering(reduction="pca").fit(X, y).flags_[:30].all(), "the paper's rule alone flags it"


def test_relabelled_fraction_excludes_the_cluster():
    X = np.r_[np.zeros((20, 2)), np.ones((5, 2)) * 10, np.ones((20, 2)) * 10.2]
    y = np.r_[np.zeros(20, int), np.zeros(5, int), np.ones(20, int)]
    cluster = np.zeros(45, bool)
    cluster[20:25] = True
    assert relabelled_fraction(X, y, cluster, 0, n_neighbors=5) == 1.0


def test_inputs_must_match_the_features():
    from poisonlab.exceptions import DataError

    rng, _, X, y = _world()
    with pytest.raises(DataError, match="inputs has 10 rows"):
        ActivationClustering(class_z=3.0).fit(X, y, inputs=X[:10])
