"""R23's comparison and pass rule on hand-made certificates (no data, no training): certified
accuracy of each method against DPA's at every radius, and a pass when the best of ROE, FA and
FA+ROE is never below DPA and >= 1 point above it at DPA's median radius."""

import numpy as np
import pytest

from poisonlab.reproductions import REPRODUCTIONS
from poisonlab.reproductions import r23_run_off as r23


def _seed(gains):
    """One seed's record: DPA certifies 10 inputs at radii 0..9 (median radius 5: inputs 5..9); each method
    gets ``gains[m]`` = (radius offset per input) applied to DPA's radii."""
    y = np.zeros(10, dtype=np.int64)
    r_dpa = np.arange(10)
    methods = {m: (y.copy(), np.maximum(r_dpa + np.asarray(off), -1)) for m, off in gains.items()}
    return r23.compare(y.copy(), r_dpa, methods, y)


def test_compare_hand_computed():
    # ROE: every radius + 1 -> one more input certified at radii 1..10: +10 points at DPA's median (5)
    # FA: input 4 loses 2 (radius 2): certified accuracy at radii 3 and 4 drops by 10 points
    off_fa = np.zeros(10, dtype=np.int64)
    off_fa[4] = -2
    out = _seed({"roe": np.ones(10, dtype=np.int64), "fa": off_fa, "fa_roe": np.zeros(10, dtype=np.int64)})
    assert out["dpa_median_radius"] == 5
    assert out["roe"]["gain_at_dpa_median"] == pytest.approx(0.1)
    assert out["roe"]["n_radii_below_dpa"] == 0 and out["roe"]["min_gain"] == 0.0
    assert out["roe"]["median_radius"] == 6
    assert out["fa"]["radii_below_dpa"] == [3, 4] and out["fa"]["min_gain"] == pytest.approx(-0.1)
    assert out["fa_roe"]["max_gain"] == 0.0 and out["fa_roe"]["n_radii_below_dpa"] == 0
    assert out["curve"]["dpa"][0] == 1.0 and out["clean_accuracy"]["fa"] == 1.0


def test_the_best_method_decides():
    zero = np.zeros(10, dtype=np.int64)
    fa_wins = [_seed({"roe": zero, "fa": np.ones(10, dtype=np.int64), "fa_roe": zero}) for _ in range(2)]
    out = r23.summarize(fa_wins)
    assert out["passed"] and out["verdict"].startswith("best FA;")
    assert out["measured"]["fa"]["gain_at_dpa_median"]["mean"] == pytest.approx(0.1)
    # ... unless it falls below DPA at one radius on one seed
    dip = np.array([-1, 0, 0, 0, 1, 1, 1, 1, 1, 1])     # +10 points at radius 5, input 0 lost: below at 0
    out = r23.summarize([fa_wins[0], _seed({"roe": zero, "fa": dip, "fa_roe": zero})])
    assert not out["passed"] and "below DPA at [0, 1] radii" in out["verdict"]
    # ... and a gain under 1 point is a miss even where it is never below
    out = r23.summarize([_seed({"roe": zero, "fa": zero, "fa_roe": zero})])
    assert not out["passed"] and out["measured"]["fa_d"] == r23.D


def test_r23_is_registered_with_its_setting():
    rep = REPRODUCTIONS["R23"]
    assert rep.title == r23.TITLE and "d = 3" in rep.setting and rep.minutes == r23.MINUTES
    assert r23.D == 3 and r23.METHODS == ("roe", "fa", "fa_roe")
