"""Neural Cleanse: the anomaly index by hand, finding the target, unlearning on a copy, bad input."""

import numpy as np
import pytest
import torch

from poisonlab import DataError, InvalidParameterError
from poisonlab.defenses.model import NeuralCleanse, anomaly_index
from poisonlab.evaluation.metrics import attack_success_rate


def test_anomaly_index_hand_computed():
    l1 = np.array([10.0, 11.0, 9.0, 10.0, 2.0])
    # median 10, MAD = median(|0,1,1,0,8|) = 1 -> index (10 - l1) / 1.4826
    assert np.allclose(anomaly_index(l1), (10 - l1) / 1.4826)
    assert anomaly_index(l1)[4] > 2 and (anomaly_index(l1)[:4] < 2).all()


@pytest.fixture(scope="module")
def fitted(backdoored_digits):
    """Neural Cleanse with its defaults (each class runs until it converges)."""
    s, _, clf = backdoored_digits
    return NeuralCleanse(random_state=0).fit(s.test.X[:200], model=clf)


def test_neural_cleanse_finds_the_target(fitted):
    nc = fitted
    assert nc.conclusive_
    assert np.flatnonzero(nc.flags_).tolist() == [3]
    assert nc.l1_norms_.argmin() == 3 and nc.scores_[3] > 2
    mask, pattern = nc.reversed_trigger(3)
    assert mask.shape == (8, 8) and pattern.shape == (1, 8, 8)
    assert mask[-3:, -3:].mean() > mask.mean()  # the reversed mask sits where the patch was


def test_neural_cleanse_unlearning_repairs_a_copy(backdoored_digits, fitted):
    s, atk, clf = backdoored_digits
    nc = fitted
    before = [p.detach().clone() for p in clf.module_.parameters()]
    fixed = nc.unlearn(clf, s.train.X, s.train.y, epochs=3)
    keep = s.test.y != 3
    asr_before = attack_success_rate(s.test.y[keep], clf.predict(atk.apply_trigger(s.test.X[keep])), 3)
    asr_after = attack_success_rate(s.test.y[keep], fixed.predict(atk.apply_trigger(s.test.X[keep])), 3)
    assert asr_after < asr_before - 0.3
    assert all(torch.equal(a, b) for a, b in zip(before, clf.module_.parameters())), "original untouched"


def test_neural_cleanse_bad_input(backdoored_digits):
    s, _, clf = backdoored_digits
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(InvalidParameterError, match="differentiable torch model"):
        NeuralCleanse().fit(s.test.X[:10], model=LogisticRegression())
    with pytest.raises(DataError, match="do not fit the model"):
        NeuralCleanse(epochs=1).fit(np.zeros((4, 3, 8, 8), np.float32), model=clf)
    with pytest.raises(DataError, match="dimensions"):
        NeuralCleanse().fit(np.zeros((4, 64)), model=clf)
