"""Bias introduction: subgroup label flips and the group error gaps they open."""

import numpy as np
import pytest

from poisonlab.attacks.data import SubgroupLabelFlip
from poisonlab.evaluation.fairness import group_gaps, group_rates
from poisonlab.exceptions import DataError, InvalidParameterError


def test_subgroup_flip_and_group_gaps():
    rng = np.random.default_rng(0)
    groups = np.where(np.arange(200) % 2 == 0, "F", "M")
    y = (rng.uniform(size=200) < 0.4).astype(int)
    X = rng.normal(size=(200, 3))
    res = SubgroupLabelFlip(subgroup="F", from_class=1, to_class=0, fraction=0.5, random_state=0).poison(
        X, y, groups=groups)
    cand = (groups == "F") & (y == 1)
    assert res.n_poison == round(0.5 * cand.sum()) and cand[res.indices].all() and (res.y[res.indices] == 0).all()
    # hand-computed rates: predictions equal to the poisoned labels
    rates = group_rates(y, res.y, groups)
    assert rates["F"]["fnr"] == pytest.approx(res.n_poison / cand.sum())
    assert rates["M"]["fnr"] == 0 and rates["F"]["fpr"] == 0
    gaps = group_gaps(rates, "F", "M")
    assert gaps["fnr_gap"] == pytest.approx(res.n_poison / cand.sum())
    with pytest.raises(DataError, match="does not occur"):
        SubgroupLabelFlip(subgroup="X").poison(X, y, groups=groups)
    with pytest.raises(DataError, match="one value per sample"):
        SubgroupLabelFlip(subgroup="F").poison(X, y, groups=groups[:10])
    with pytest.raises(InvalidParameterError, match="groups"):
        SubgroupLabelFlip(subgroup="F").poison(X, y)
