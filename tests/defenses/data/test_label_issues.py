"""Label issues (confident learning): flips found on digits, user-given probabilities."""

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.defenses.data import LabelIssues


def test_label_issues_finds_flips_on_digits():
    from sklearn.datasets import load_digits

    from poisonlab.attacks.data import RandomLabelFlip

    X, y = load_digits(return_X_y=True)
    res = RandomLabelFlip(poison_rate=0.2, random_state=0).poison(X, y)
    det = LabelIssues().fit(X / 16.0, res.y)
    assert det.flags_[res.poison_mask].mean() >= 0.85  # R19's recall floor
    assert det.n_issues_ == det.flags_.sum()


def test_label_issues_takes_user_probabilities():
    y = np.array([0, 0, 0, 1, 1, 1] * 5)
    P = np.where(np.eye(2)[y] > 0, 0.9, 0.1)
    P[0] = [0.05, 0.95]  # sample 0 looks like class 1
    det = LabelIssues(contamination=0.05).fit(np.zeros((30, 1)), y, pred_probs=P)
    assert np.argmax(det.scores_) == 0
    with pytest.raises(DataError, match="29 rows"):
        LabelIssues().fit(np.zeros((30, 1)), y, pred_probs=P[:29])
