"""Subset-ensemble disagreement: out-of-subset votes find planted label flips."""

import numpy as np
import pytest
from torch import nn

from poisonlab.defenses.data.subset_disagreement import (
    SubsetDisagreement,
    out_of_subset_disagreement,
    out_of_subset_probability,
)
from poisonlab.defenses.training.partition import DeepPartitionAggregation
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.models import TrainConfig


def _flipped_blobs(n=400, rate=0.05, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    X = rng.normal(0, 1, size=(n, 6)).astype(np.float32)
    X[np.arange(n), y] += 4.0
    flip = rng.choice(n, int(rate * n), replace=False)
    y_bad = y.copy()
    y_bad[flip] = (y[flip] + 1 + rng.integers(0, 3, len(flip))) % 4
    mask = np.zeros(n, bool)
    mask[flip] = True
    return X, y_bad, mask


def test_scores_hand_computed():
    # 5 models; sample 0: all 5 vote its label (own included) -> 0; sample 1: only its own -> 1
    assert out_of_subset_disagreement(np.array([5, 1, 3]), np.array([True, True, False]), 5).tolist() == \
        [0.0, 1.0, 0.25]
    assert np.allclose(out_of_subset_probability(np.array([4.5, 1.0]), np.array([0.9, 1.0]), 5), [0.1, 1.0])


# votes are coarse (k - 1 levels): flips that every other model rejects tie at 1.0, and a quantile
# threshold landing on 1.0 keeps them all (flags are scores > threshold), so "vote" needs a
# contamination above the true rate; "probability" ranks finely
@pytest.mark.parametrize("measure, contamination, min_precision",
                         [("vote", 0.1, 0.45), ("probability", 0.05, 0.8)])
def test_finds_planted_label_flips(measure, contamination, min_precision):
    X, y, mask = _flipped_blobs()
    det = SubsetDisagreement(k=8, measure=measure, contamination=contamination, random_state=0).fit(X, y)
    recall = det.flags_[mask].mean()
    precision = mask[det.flags_].mean()
    assert recall >= 0.9 and precision >= min_precision, (recall, precision)
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(mask, det.scores_) >= 0.97


def test_reuses_a_fitted_partition_ensemble():
    X, y, mask = _flipped_blobs()
    dpa = DeepPartitionAggregation(k=8, random_state=0).fit(
        X, y, model_factory=lambda s: nn.Linear(6, 4), config=TrainConfig(epochs=50, lr=0.05, batch_size=32))
    det = SubsetDisagreement(contamination=0.05).fit(X, y, ensemble=dpa)
    assert det.n_models_ == 8 and np.array_equal(det.partitions_, dpa.partitions_)
    assert det.flags_[mask].mean() >= 0.9
    with pytest.raises(DataError, match="fitted on this X"):
        SubsetDisagreement().fit(X[:100], y[:100], ensemble=dpa)


def test_bad_input():
    X, y, _ = _flipped_blobs(n=40)
    with pytest.raises(InvalidParameterError, match=r"k must be at most the number of samples \(40\)"):
        SubsetDisagreement(k=41).fit(X, y)
    with pytest.raises(InvalidParameterError, match="SubsetDisagreement.k"):
        SubsetDisagreement(k=1).fit(X, y)
