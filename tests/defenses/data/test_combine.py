"""Combining detectors: rank averaging and votes by hand, and the combiner's votes."""

import numpy as np
import pytest

from poisonlab import InvalidParameterError
from poisonlab.defenses.data import RankCombiner
from poisonlab.defenses.data.combine import rank_average, votes_then_rank
from poisonlab.evaluation.detection import auroc

from ._helpers import _planted


def test_rank_average_and_votes_hand_computed():
    S = np.array([[1.0, 2.0, 3.0], [30.0, 10.0, 20.0]])
    ranks = [(1 / 3 + 1) / 2, (2 / 3 + 1 / 3) / 2, (1 + 2 / 3) / 2]
    assert np.allclose(rank_average(S), ranks)
    F = np.array([[False, False, True], [True, False, False]])
    assert np.allclose(votes_then_rank(S, F), np.add([1, 0, 1], ranks))


def test_combiner_reports_votes():
    X, y, poison = _planted()
    comb = RankCombiner(contamination=0.03).fit(X, y)
    assert comb.votes_.shape == (len(y), 3) and auroc(comb.scores_, poison) >= 0.95
    from_scores = RankCombiner.from_scores([d.scores_ for d in comb.detectors_],
                                           [d.flags_ for d in comb.detectors_], contamination=0.03)
    assert np.allclose(from_scores.scores_, comb.scores_)
    rank_only = RankCombiner(method="rank", contamination=0.03).fit(X, y)
    assert rank_only.scores_.max() <= 1.0 < comb.scores_.max()
    with pytest.raises(InvalidParameterError, match="sample-level"):
        RankCombiner(detectors=[]).fit(X, y)
