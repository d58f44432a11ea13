"""Neural Cleanse's maths by hand: the MAD anomaly index (low side only), the L1 weight's
schedule, the convergence counter, and the inconclusive result of an unconverged reversal."""

import warnings

import numpy as np
import pytest
import torch

from poisonlab.defenses.model import NeuralCleanse, anomaly_index
from poisonlab.defenses.model.neural_cleanse import INDEX_THRESHOLD, MAD_CONSTANT, adjust_cost, stall_count
from poisonlab.exceptions import PoisonlabWarning


def test_anomaly_index_by_hand_low_side_only():
    l1 = np.array([10.0, 11.0, 9.0, 10.0, 2.0, 14.0, 10.5])
    # median 10; |deviations| 0, 1, 1, 0, 8, 4, 0.5 -> MAD = median = 1 -> consistent MAD 1.4826
    idx = anomaly_index(l1)
    assert MAD_CONSTANT == 1.4826 and INDEX_THRESHOLD == 2.0
    assert idx == pytest.approx([0.0, -1 / 1.4826, 1 / 1.4826, 0.0, 8 / 1.4826, -4 / 1.4826, -0.5 / 1.4826])
    assert np.flatnonzero(idx > 2).tolist() == [4]
    # the class with an abnormally LARGE mask (|14 - 10| / 1.4826 = 2.70 > 2) is not an outlier of
    # interest: the paper looks only at the small end
    assert abs(idx[5]) > 2 and idx[5] < 0


def test_anomaly_index_even_count_and_scale_free():
    l1 = np.array([1.0, 2.0, 3.0, 4.0])
    # median 2.5; |deviations| 1.5, 0.5, 0.5, 1.5 -> MAD 1.0
    assert anomaly_index(l1) == pytest.approx(np.array([1.5, 0.5, -0.5, -1.5]) / 1.4826)
    assert anomaly_index(10 * l1) == pytest.approx(anomaly_index(l1))


def test_cost_schedule_by_hand():
    cost, up, down = np.array([1e-3]), np.array([0]), np.array([0])
    seen = []
    for above in [True, True, True, False, False, False, True]:
        cost, up, down, r, lw = adjust_cost(cost, np.array([above]), up, down, patience=3, multiplier=1.5)
        seen.append((cost[0], bool(r[0]), bool(lw[0])))
    assert [s[1] for s in seen] == [False, False, True, False, False, False, False]
    assert [s[2] for s in seen] == [False, False, False, False, False, True, False]
    assert seen[2][0] == pytest.approx(1.5e-3)                   # raised by 1.5 after 3 epochs above
    assert seen[5][0] == pytest.approx(1.5e-3 / 1.5 ** 1.5)      # lowered by 1.5^1.5 after 3 below
    assert (up[0], down[0]) == (1, 0)


def test_stall_counter_by_hand():
    best, ref, stall = np.array([10.0]), np.array([np.inf]), np.array([0])
    counts = []
    for b in [10.0, 9.95, 9.92, 9.5, 9.49, np.inf]:
        best = np.array([min(best[0], b)])
        stall, ref = stall_count(best, ref, stall)
        counts.append(int(stall[0]))
    # the first mask found starts the count at 0; 9.95 and 9.92 are within 1% of the epoch before
    # (10, 9.95): stalled; 9.5 is 4% below 9.92: restart; 9.49 and no new mask: stalled
    assert counts == [0, 1, 2, 0, 1, 2]
    assert ref[0] == 9.49


def _tiny():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    X = np.random.default_rng(0).random((40, 1, 4, 4), dtype=np.float32)
    return model, X


def test_unconverged_reversal_is_inconclusive_not_a_backdoor():
    model, X = _tiny()
    with pytest.warns(PoisonlabWarning, match="inconclusive.*had not converged after 2 epochs"):
        nc = NeuralCleanse(epochs=2, random_state=0).fit(X, model=model)
    assert not nc.conclusive_ and not nc.converged_.any()
    assert nc.threshold_ == np.inf and not nc.flags_.any()
    assert np.array_equal(nc.flags_, nc.scores_ > nc.threshold_)
    assert np.isfinite(nc.scores_).all() and nc.anomaly_index_ == pytest.approx(anomaly_index(nc.l1_norms_))
    assert np.all(nc.scores_ <= nc.anomaly_index_)
    assert nc.history_["l1"].shape == (2, 4) and nc.epochs_run_.tolist() == [2, 2, 2, 2]


def test_class_that_never_reaches_the_threshold_is_named():
    model, X = _tiny()
    with pytest.warns(PoisonlabWarning, match=r"never reached an attack success of 1"):
        nc = NeuralCleanse(epochs=1, asr_threshold=1.0, init_cost=10.0, random_state=0).fit(X, model=model)
    assert not nc.reached_threshold_.all() and not nc.flags_.any()


def test_same_seed_same_result():
    model, X = _tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoisonlabWarning)
        a = NeuralCleanse(epochs=3, random_state=4).fit(X, model=model)
        b = NeuralCleanse(epochs=3, random_state=4).fit(X, model=model)
    assert np.array_equal(a.l1_norms_, b.l1_norms_) and np.array_equal(a.masks_, b.masks_)


def test_mask_gap_by_hand():
    from poisonlab.defenses.model.neural_cleanse import mask_gap

    l1 = np.array([10.0, 12.0, 5.0, 10.0])
    # the smallest (5) against the next (10): 2x; every other class against the smallest: < 1
    assert mask_gap(l1) == pytest.approx([0.5, 5 / 12, 2.0, 0.5])
    assert mask_gap(np.array([3.0, 3.0, 9.0])) == pytest.approx([1.0, 1.0, 1 / 3])  # a tie: no gap


# the L1 norms recorded by benchmarks/bench_neural_cleanse.py (neural_cleanse_fpr.json)
FASHION_CLEAN_0 = [68.3, 78.1, 67.6, 78.7, 90.4, 66.7, 34.7, 98.3, 42.3, 88.0]      # shirt (6): index 2.43
MNIST_CLEAN_4 = [88.5, 58.1, 38.4, 41.8, 89.1, 63.8, 57.5, 60.5, 59.4, 66.1]         # classes 2, 3: 2.88
DIGITS_BADNETS_2 = [6.1, 13.7, 11.1, 11.2, 12.7, 11.1, 14.2, 12.6, 13.1, 8.8]       # target 0 (1.44x) and 9


@pytest.mark.parametrize("norms, paper, confirmed", [
    (FASHION_CLEAN_0, [6], []),
    (MNIST_CLEAN_4, [2, 3], []),
    (DIGITS_BADNETS_2, [0, 9], [0]),    # the paper's rule also flagged class 9 beside the target
])
def test_the_gap_confirms_backdoors_and_drops_natural_cheap_classes(norms, paper, confirmed):
    from poisonlab.defenses.model.neural_cleanse import MIN_GAP, confirmed_index, mask_gap

    idx = anomaly_index(np.array(norms))
    assert np.flatnonzero(idx > INDEX_THRESHOLD).tolist() == paper
    score = confirmed_index(idx, mask_gap(np.array(norms)), MIN_GAP)
    assert np.flatnonzero(score > INDEX_THRESHOLD).tolist() == confirmed
    # never above the paper's index: the gap only removes flags
    assert np.all(score <= idx)


def test_min_gap_none_is_the_papers_rule_and_the_default_caps_the_scores():
    model, X = _tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paper = NeuralCleanse(epochs=3, min_gap=None, random_state=0).fit(X, model=model)
        capped = NeuralCleanse(epochs=3, random_state=0).fit(X, model=model)
    assert np.array_equal(paper.scores_, paper.anomaly_index_)
    assert np.array_equal(paper.anomaly_index_, capped.anomaly_index_)
    assert np.all(capped.scores_ <= capped.anomaly_index_)
    with pytest.raises(Exception, match="min_gap"):
        NeuralCleanse(min_gap=1.0).fit(X, model=model)
