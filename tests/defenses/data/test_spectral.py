"""Spectral signatures: the scores by hand, centring, and the per-class threshold rule."""

import numpy as np

from poisonlab.defenses.data import SpectralSignatures
from poisonlab.defenses.data.spectral import spectral_scores


def test_spectral_scores_hand_computed():
    R = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.1], [0.0, -0.1]])
    assert np.allclose(spectral_scores(R), [1.0, 1.0, 0.0, 0.0])


def test_spectral_scores_project_centred_features():
    # Tran et al. centre before projecting: a constant offset must not change any score.
    # (Peers that project uncentred features would score every point by the offset.)
    rng = np.random.default_rng(0)
    R = rng.normal(size=(50, 4))
    assert np.allclose(spectral_scores(R), spectral_scores(R + 100.0))
    wide = rng.normal(size=(5, 40))  # n < d takes the SVD branch
    assert np.allclose(spectral_scores(wide), spectral_scores(wide - 3.0))


def test_per_class_rule_flags_the_top_of_each_class():
    # one sample per class far out: with epsilon = 1/6, 1.5 epsilon of 4 samples is ceil(1.0) = 1
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (4, 3)), rng.normal(20, 1, (4, 3))]
    X[0] += [9, 0, 0]
    X[7] -= [0, 9, 0]
    y = np.repeat([0, 1], 4)
    det = SpectralSignatures(contamination=1 / 6, threshold_rule="per_class").fit(X, y)
    assert np.flatnonzero(det.flags_).tolist() == [0, 7]
    assert det.threshold_ == 0.0 and np.array_equal(det.flags_, det.scores_ > 0)
    # ranks within each class are those of the default rule's scores
    plain = SpectralSignatures().fit(X, y).scores_
    for c in (0, 1):
        assert np.array_equal(np.argsort(det.scores_[y == c]), np.argsort(plain[y == c]))
