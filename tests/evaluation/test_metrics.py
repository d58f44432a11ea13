"""Metrics against hand-computed values."""

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.evaluation import attack_success_rate, clean_accuracy, confusion_matrix, per_class_accuracy


def test_confusion_and_accuracy():
    y = [0, 0, 1, 1, 2]
    p = [0, 1, 1, 1, 0]
    assert confusion_matrix(y, p).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert clean_accuracy(y, p) == pytest.approx(0.6)
    acc = per_class_accuracy(y, p, n_classes=4)
    assert acc[:3].tolist() == [0.5, 1.0, 0.0] and np.isnan(acc[3])


def test_asr_excludes_target_class():
    y = [7, 1, 2, 3, 7]
    p = [7, 7, 7, 3, 7]
    assert attack_success_rate(y, p, 7) == pytest.approx(2 / 3)
    assert attack_success_rate([0, 1], [1, 2], [1, 2]) == 1.0  # all-to-all
    with pytest.raises(DataError, match="outside the target class"):
        attack_success_rate([7, 7], [7, 7], 7)
    with pytest.raises(DataError, match="same number of samples"):
        clean_accuracy([0, 1], [0])
