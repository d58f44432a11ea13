"""Activation clustering: the paper's rule by hand, planted clusters, and exclusionary
reclassification."""

import numpy as np
import pytest

from poisonlab.defenses.data import ActivationClustering
from poisonlab.defenses.data.activation_clustering import cluster_scores

from ._helpers import _planted


def test_cluster_scores_encode_the_paper_rule():
    m = np.array([True, False])
    # size 0.1 < 0.35 and silhouette 0.3 > 0.1: min(3, 0.9/0.65) = 1.385 > 1
    assert np.allclose(cluster_scores(m, 0.1, 0.3, 0.35, 0.1), [0.9 / 0.65, 0.0])
    # silhouette below its threshold: the score stays under 1
    assert cluster_scores(m, 0.1, 0.05, 0.35, 0.1)[0] == pytest.approx(0.5)
    # cluster too large (0.45 > 0.35): under 1
    assert cluster_scores(m, 0.45, 0.9, 0.35, 0.1)[0] == pytest.approx(0.55 / 0.65)


@pytest.mark.parametrize("reduction, n_poison", [("pca", 100), ("ica", 50)])
def test_activation_clustering_planted(reduction, n_poison):
    # 10% of the class for ICA: in whitened coordinates a cluster holding a fraction p sits only
    # 1/sqrt(p(1-p)) standard deviations away along its direction, so with 9 isotropic noise
    # dimensions a 20% cluster's silhouette is capped near 0.13 (below the 0.15 threshold).
    X, y, poison = _planted(n_poison=n_poison, shift=4.0)
    det = ActivationClustering(reduction=reduction).fit(X, y)
    assert det.flags_[poison].mean() >= 0.95  # TPR floor
    assert det.flags_[~poison].mean() <= 0.01  # FPR ceiling
    assert det.class_report_[0]["poisoned"] and not any(det.class_report_[c]["poisoned"] for c in range(1, 5))


def test_exclusionary_reclassification_tells_poison_from_bimodal_class():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, size=(3, 16))
    y = np.repeat([0, 1, 2], 300)
    X = centres[y] + rng.normal(size=(900, 16))
    # poisons: class-1 samples relabelled 0 (as a dirty-label backdoor's are)
    X = np.r_[X, centres[1] + rng.normal(size=(60, 16)) + 1.5]
    y = np.r_[y, np.zeros(60, int)]
    det = ActivationClustering(reduction="pca").fit(X, y)
    assert det.class_report_[0]["poisoned"]
    assert det.exclusionary_reclassification(X, y) == {0: True}
    # a class that is merely bimodal: its small mode is still classified as itself
    Xb, yb, _ = _planted(n_poison=100, shift=4.0)
    det_b = ActivationClustering(reduction="pca").fit(Xb, yb)
    assert det_b.exclusionary_reclassification(Xb, yb) == {0: False}
