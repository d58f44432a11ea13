"""Detection metrics against hand-computed values."""

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.evaluation.detection import auroc, detection_report, precision_recall_f1, tpr_at_fpr


def test_detection_metrics_hand_computed():
    flags = np.array([True, True, False, False, True])
    mask = np.array([True, False, True, False, False])
    m = precision_recall_f1(flags, mask)
    assert (m["precision"], m["recall"], m["fpr"]) == (pytest.approx(1 / 3), 0.5, pytest.approx(2 / 3))
    assert m["f1"] == pytest.approx(0.4)
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert tpr_at_fpr([0, 1, 2, 3, 9, 8], [False] * 4 + [True] * 2, 0.0) == 1.0
    rep = detection_report([0.9, 0.1, 0.8], [True, False, True], [True, False, False], y=[0, 0, 1])
    assert rep["per_class"][1]["precision"] == 0.0
    with pytest.raises(DataError, match="boolean"):
        precision_recall_f1([1, 0], [True, False])
