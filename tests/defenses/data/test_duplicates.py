"""Duplicate conflicts: the conflict fraction by hand, exact and near copies, texts."""

import numpy as np
import pytest

from poisonlab import InvalidParameterError
from poisonlab.defenses.data import DuplicateConflicts
from poisonlab.defenses.data.duplicates import conflict_fraction


def test_conflict_fraction_hand_computed():
    groups = np.array([0, 0, 0, 1, 2, 2])
    y = np.array([0, 0, 1, 1, 2, 2])
    assert np.allclose(conflict_fraction(groups, y, 3), [0.5, 0.5, 1.0, 0.0, 0.0, 0.0])


def test_duplicates_exact_and_near():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.01, 5.0], [9.0, 9.0]])
    y = np.array([0, 1, 0, 1, 1])
    assert DuplicateConflicts().fit(X, y).flags_.tolist() == [True, True, False, False, False]
    near = DuplicateConflicts(radius=0.1).fit(X, y)
    assert near.flags_.tolist() == [True, True, True, True, False] and near.groups_[2] == near.groups_[3]


def test_duplicates_in_texts():
    texts = np.array(["Win  a prize", "win a prize", "Win a prize", "hello"], dtype=object)
    det = DuplicateConflicts().fit(texts, [1, 0, 1, 0])
    # whitespace is normalised, case is not: rows 0 and 2 are copies, both labelled 1
    assert det.groups_[0] == det.groups_[2] and not det.flags_.any()
    det = DuplicateConflicts().fit(texts, [1, 0, 0, 0])
    assert det.flags_.tolist() == [True, False, True, False]
    with pytest.raises(InvalidParameterError, match="radius must be 0 for texts"):
        DuplicateConflicts(radius=0.5).fit(texts, [1, 0, 0, 0])
