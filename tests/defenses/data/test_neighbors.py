"""Neighbour search of the label detectors: exact equals scikit-learn, the cell search finds most
exact neighbours, and the k-NN out-of-fold probabilities equal scikit-learn's classifier's."""

import numpy as np
import pytest

from poisonlab.defenses.data import KNNLabelConsistency, LabelIssues
from poisonlab.defenses.data._neighbors import kneighbors
from poisonlab.defenses.data.label_issues import knn_out_of_fold_probabilities, out_of_fold_probabilities


def _clusters(n=3000, d=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(5, size=n)
    return rng.normal(0, 4, size=(5, d))[y] + rng.normal(size=(n, d)), y


def test_exact_search_is_scikit_learn_s_without_the_query_itself():
    from sklearn.neighbors import NearestNeighbors

    Z, _ = _clusters(500)
    ref = NearestNeighbors(n_neighbors=6).fit(Z).kneighbors(Z, return_distance=False)[:, 1:]
    assert np.array_equal(kneighbors(Z, None, 5, method="exact"), ref)
    Q = Z[:7] + 0.01
    assert np.array_equal(kneighbors(Z, Q, 3, method="exact"),
                          NearestNeighbors(n_neighbors=3).fit(Z).kneighbors(Q, return_distance=False))


def test_cell_search_finds_most_exact_neighbours():
    Z, _ = _clusters(6000)
    exact = kneighbors(Z, None, 10, method="exact")
    cells = kneighbors(Z, None, 10, method="cells", n_cells=32, n_probe=6)
    found = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, cells)])
    assert found >= 0.95
    assert not (cells == np.arange(len(Z))[:, None]).any(), "a query is never its own neighbour"


def test_knn_out_of_fold_probabilities_equal_the_classifier_s():
    from sklearn.neighbors import KNeighborsClassifier

    Z, y = _clusters(800)
    mine = knn_out_of_fold_probabilities(Z, y, 5, 0, search="exact")
    ref = out_of_fold_probabilities(Z, y, KNeighborsClassifier(n_neighbors=10, weights="distance"), 5, 0)
    assert np.allclose(mine, ref)


@pytest.mark.parametrize("search", ["exact", "cells"])
def test_label_detectors_find_flipped_labels_with_either_search(search):
    Z, y = _clusters(4000)
    flipped = y.copy()
    flipped[:80] = (flipped[:80] + 1) % 5
    for det in (KNNLabelConsistency(search=search, contamination="auto"), LabelIssues(search=search)):
        det.fit(Z, flipped)
        assert det.flags_[:80].mean() >= 0.9 and det.flags_[80:].mean() <= 0.02, type(det).__name__
