"""The clustering maths (two-means, silhouette, PCA, whitening) against scikit-learn."""

import numpy as np
import pytest


def test_clustering_maths_match_references():
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from poisonlab.defenses.data._clustering import pca_scores, silhouette, two_means, whiten

    rng = np.random.default_rng(3)
    Z = np.r_[rng.normal(size=(300, 5)), rng.normal(size=(40, 5)) + 4.0]
    labels = two_means(Z, seed=0)
    ref = KMeans(2, n_init=10, random_state=0).fit_predict(Z)
    assert max(np.mean(labels == ref), np.mean(labels != ref)) == 1.0
    assert silhouette(Z, labels, sample_size=10_000) == pytest.approx(silhouette_score(Z, labels))
    # whitening then any rotation (what FastICA adds) leaves distances, hence clusters, unchanged
    W = whiten(pca_scores(Z, 5))
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert np.allclose(np.linalg.norm(W[:50] - W[1], axis=1), np.linalg.norm((W @ Q)[:50] - (W @ Q)[1], axis=1))
    assert np.allclose(np.cov(W, rowvar=False, bias=True), np.eye(5), atol=1e-9)
    assert np.array_equal(two_means(Z, seed=4), two_means(Z, seed=4))
