"""SPECTRE: the QUE score by hand, robust whitening, and SPECTRE against spectral signatures at a
small poison rate."""

import numpy as np
import pytest

from poisonlab.defenses.data import SpectralSignatures, Spectre
from poisonlab.defenses.data.spectre import que_scores


def test_que_score_alpha_zero_is_squared_norm_over_d():
    Z = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    assert np.allclose(que_scores(Z, alpha=0.0), (Z ** 2).sum(1) / 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_spectre_beats_spectral_at_small_epsilon(seed):
    # 12 poisons in a class of 500 (2.4%), clean data with 4 high-variance directions: the top
    # singular vector is clean variation, so spectral signatures miss the poisons; robust
    # whitening removes that variation and the QUE score finds them (Hayase et al. 2021).
    rng = np.random.default_rng(seed)
    d, n = 32, 500
    scales = np.ones(d)
    scales[:4] = 4.0
    y = np.repeat(np.arange(3), n)
    X = rng.normal(0, 5, (3, d))[y] + rng.normal(size=(len(y), d)) * scales
    idx = rng.choice(n, 12, replace=False)
    poison = np.zeros(len(y), bool)
    poison[idx] = True
    direction = np.zeros(d)
    direction[10:] = rng.normal(size=d - 10)
    X[idx] += 6.0 * direction / np.linalg.norm(direction)
    # the paper's rule: remove 1.5 epsilon of each class (SPECTRE keeps its default trim, 2 x 0.05)
    eps = 12 / n
    spec = SpectralSignatures(contamination=eps, threshold_rule="per_class").fit(X, y).flags_[poison].mean()
    spectre = Spectre(n_components=16, contamination=eps, trim_fraction=0.1,
                      threshold_rule="per_class").fit(X, y).flags_[poison].mean()
    assert spectre >= 0.9 and spec <= 0.2


def test_robust_whiten_leaves_gross_outliers_out_of_the_estimate():
    from poisonlab.defenses.data.spectre import robust_whiten, whiten

    rng = np.random.default_rng(0)
    R = rng.normal(size=(300, 3))
    R[:15] += 40.0
    Z = robust_whiten(R, n_trim=30)
    clean = Z[15:]
    # the estimate is the trimmed clean bulk: clean rows come out near zero mean and unit
    # covariance (trimming the 15 clean tails shrinks the estimate a little, so slightly above 1)
    assert np.abs(clean.mean(axis=0)).max() < 0.2
    assert np.allclose(np.diag(np.cov(clean.T)), 1.0, atol=0.35)
    assert np.linalg.norm(Z[:15], axis=1).min() > 20
    # plain whitening lets the outliers in: they no longer stand out
    assert np.linalg.norm(whiten(R, np.ones(300, bool))[:15], axis=1).max() < 5
    # nothing trimmed = plain whitening; the input is untouched
    before = R.copy()
    assert np.allclose(robust_whiten(R, 0), whiten(R, np.ones(300, bool)))
    assert np.array_equal(R, before)
