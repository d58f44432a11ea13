"""Every data-stage detector of poisonlab.defenses.data at once: planted-poison recall floors and
bad input."""

import numpy as np
import pytest

from poisonlab import DataError, InvalidParameterError
from poisonlab.defenses.data import (
    ActivationClustering,
    LabelIssues,
    RobustOutliers,
    SpectralSignatures,
    Spectre,
)
from poisonlab.evaluation.detection import auroc

from ._helpers import _planted


@pytest.mark.parametrize("cls, kw, floor", [
    (SpectralSignatures, {}, 0.95),
    (Spectre, {"n_components": 16, "trim_fraction": 0.06}, 0.95),
    (RobustOutliers, {}, 0.90),
])
def test_recall_floor_planted_cluster(cls, kw, floor):
    X, y, poison = _planted()
    det = cls(contamination=0.03, **kw).fit(X, y)
    assert auroc(det.scores_, poison) >= 0.97
    if "threshold_rule" in det.get_params():
        # the paper's rule: remove 1.5 epsilon of each class, epsilon = 50 / 500
        det = cls(contamination=50 / 500, threshold_rule="per_class", **kw).fit(X, y)
    else:
        det = cls(contamination=1.5 * 50 / 500 / 5, **kw).fit(X, y)  # as many flags, over all classes
    assert det.flags_[poison].mean() >= floor


@pytest.mark.parametrize("cls", [SpectralSignatures, Spectre, ActivationClustering, RobustOutliers, LabelIssues])
def test_bad_features(cls):
    X, y, _ = _planted(n_per_class=20, n_poison=2, d=4)
    Xn = X.copy()
    Xn[5, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        cls().fit(Xn, y)
    with pytest.raises(DataError, match="99 labels but X has 100"):
        cls().fit(X, y[:-1])
    y1 = y.copy()
    y1[0] = 7  # a class with one sample
    with pytest.raises(DataError, match="class 7 has 1 sample"):
        cls().fit(X, y1)
    with pytest.raises(InvalidParameterError, match="contamination must be in"):
        cls(contamination=0.9).fit(X, y)
    with pytest.raises(DataError, match="dimensions"):
        cls().fit(X[:, :, None], y)
