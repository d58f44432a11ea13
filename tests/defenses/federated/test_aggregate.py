"""Hand-computed values for every pure function of ``aggregate.py``: tiny inputs whose result is
worked out in the comments."""

import numpy as np
import pytest

from poisonlab.defenses.federated import aggregate as A
from poisonlab.exceptions import AssumptionError, DataError


def test_pairwise_sq_distances_hand_computed():
    U = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    # |(3,4)|^2 = 25, |(6,8)|^2 = 100, |(3,4)-(6,8)|^2 = 25
    assert A.pairwise_sq_distances(U).tolist() == [[0, 25, 100], [25, 0, 25], [100, 25, 0]]


def test_pairwise_sq_distances_are_exact_far_from_the_origin():
    # points 1e8, 1e8 + 1, 1e8 + 3: uncentred, |a|^2 + |b|^2 - 2ab loses everything to round-off
    # (1e16 has no unit digit in float64); centred on the median (1e8 + 1) they are -1, 0, 2.
    U = np.array([[1e8, 5.0], [1e8 + 1, 5.0], [1e8 + 3, 5.0]])
    assert A.pairwise_sq_distances(U) == pytest.approx(np.array([[0, 1, 9], [1, 0, 4], [9, 4, 0.0]]), abs=1e-9)


def test_weighted_mean_hand_computed():
    # 0.25 * (0, 2) + 0.75 * (2, 4) = (1.5, 3.5)
    assert A.weighted_mean(np.array([[0.0, 2.0], [2.0, 4.0]]), np.array([0.25, 0.75])).tolist() == [1.5, 3.5]


def test_coordinate_median_hand_computed():
    U = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, -30.0], [100.0, 40.0]])
    # column 0: 1 2 | 3 100 -> (2 + 3) / 2 = 2.5 from clients 1, 2
    # column 1: -30 10 | 20 40 -> (10 + 20) / 2 = 15 from clients 0, 1
    med, share = A.coordinate_median(U, return_weights=True)
    assert med.tolist() == [2.5, 15.0]
    # halves per coordinate, over 2 coordinates: client 0: 1/2, client 1: 1, client 2: 1/2 -> / 2
    assert share.tolist() == [0.25, 0.5, 0.25, 0.0]
    med, share = A.coordinate_median(np.array([[1.0], [5.0], [3.0]]), return_weights=True)
    assert med.tolist() == [3.0] and share.tolist() == [0.0, 0.0, 1.0]


def test_trimmed_mean_hand_computed():
    U = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, -30.0], [100.0, 40.0], [4.0, 0.0]])
    # f = 1. column 0 sorted: 1 | 2 3 4 | 100 -> 3; column 1: -30 | 0 10 20 | 40 -> 10
    out, share = A.trimmed_mean(U, 1, return_weights=True)
    assert out.tolist() == [3.0, 10.0]
    # kept: client 0 once (10), 1 twice, 2 once (3), 3 never, 4 twice; 6 kept values in all
    assert share == pytest.approx([1 / 6, 2 / 6, 1 / 6, 0.0, 2 / 6])
    assert A.trimmed_mean(U, 0).tolist() == U.mean(axis=0).tolist()
    with pytest.raises(AssumptionError, match=r"2f < n; got n=5, f=3"):
        A.trimmed_mean(U, 3)


def test_closest_to_median_mean_hand_computed():
    U = np.array([[0.0], [1.0], [2.0], [4.5], [8.0]])
    # median 2; distances 2, 1, 0, 2.5, 6; the 3 closest are 2, 1, 0 -> mean 1
    out, share = A.closest_to_median_mean(U, 3, return_weights=True)
    assert out.tolist() == [1.0]
    assert share == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0, 0])
    assert A.closest_to_median_mean(U, 5).tolist() == [3.1]  # beta = n: the mean (15.5 / 5)


def test_krum_scores_and_choice_hand_computed():
    U = np.array([[0.0], [1.0], [3.0], [10.0]])
    # f = 0: n - f - 2 = 2 nearest neighbours.
    # 0: 1 + 9 = 10;  1: 1 + 4 = 5;  3: 4 + 9 = 13;  10: 49 + 81 = 130
    assert A.krum_scores(U, 0).tolist() == [10.0, 5.0, 13.0, 130.0]
    assert A.krum(U, 0) == 1
    assert A.multi_krum(U, 0, 2).tolist() == [1, 0]
    with pytest.raises(AssumptionError, match=r"Krum needs n > 2f \+ 2; got n=4, f=1"):
        A.krum_scores(U, 1)


def test_krum_breaks_exact_ties_by_total_distance_not_position():
    U = np.array([[0.0], [1.0], [3.0], [10.0], [2.0]])
    # f = 1: 2 nearest. 0: 1 + 4 = 5; 1: 1 + 1 = 2; 3: 1 + 4 = 5; 10: 49 + 64 = 113; 2: 1 + 1 = 2
    assert A.krum_scores(U, 1).tolist() == [5.0, 2.0, 5.0, 113.0, 2.0]
    # tie 1 vs 2: totals 1 + 4 + 81 + 1 = 87 vs 4 + 1 + 1 + 64 = 70 -> the update 2 (index 4)
    assert A.krum(U, 1) == 4
    # then 1; then the tie 0 vs 3 at 5: totals 114 vs 63 -> the update 3 (index 2)
    assert A.multi_krum(U, 1, 3).tolist() == [4, 1, 2]
    with pytest.raises(AssumptionError, match=r"m <= n - f; got n=5, f=1, m=5"):
        A.multi_krum(U, 1, 5)


def test_bulyan_hand_computed():
    U = np.array([[0.0], [1.0], [2.0], [4.5], [8.0], [50.0], [-40.0]])
    # f = 1, theta = 5, beta = 3. Iterated Krum with r - 3 neighbours on r remaining:
    # r=7 (4 nn): 0: 1+4+20.25+64=89.25, 1: 63.25, 2: 4+1+6.25+36=47.25, 4.5: 51, 8: 161.25 -> 2
    # r=6 (3 nn): 0: 85.25, 1: 62.25, 4.5: 20.25+12.25+12.25=44.75, 8: 125.25 -> 4.5
    # r=5 (2 nn): 0: 1+64=65, 1: 1+49=50, 8: 49+64=113 -> 1
    # r=4 (1 nn): 0: 64, 8: 64 (tie; totals 64+2500+1600=4164 vs 64+1764+2304=4132) -> 8
    # r=3 (1 nn, the paper's count would be 0): 0: 1600, 50: 2500, -40: 1600
    #     (tie; totals 2500+1600=4100 vs 1600+8100=9700) -> 0
    assert A.bulyan_selection(U, 1).tolist() == [2, 3, 1, 4, 0]
    # selected 2, 4.5, 1, 8, 0: median 2, the 3 closest are 2, 1, 0 -> 1.0
    out, share = A.bulyan(U, 1, return_weights=True)
    assert out.tolist() == [1.0]
    assert share == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0])
    with pytest.raises(AssumptionError, match=r"Bulyan needs n >= 4f \+ 3; got n=6, f=1"):
        A.bulyan(U[:6], 1)


def test_geometric_median_one_weiszfeld_step_hand_computed():
    U = np.array([[0.0], [3.0], [9.0]])
    # start at the mean 4; distances 4, 1, 5; beta = (1/3)(1/4, 1, 1/5)
    # z1 = (0/4 + 3 + 9/5) / (1/4 + 1 + 1/5) = 4.8 / 1.45
    z, c, n_iter = A.geometric_median(U, max_iter=1, return_weights=True)
    assert n_iter == 1 and z[0] == pytest.approx(4.8 / 1.45)
    assert c == pytest.approx(np.array([0.25, 1.0, 0.2]) / 1.45)
    # converged: the geometric median of collinear points is their median
    assert A.geometric_median(U)[0] == pytest.approx(3.0, abs=1e-5)


def test_geometric_median_square_with_a_far_point():
    # corners of the square [0, 2]^2 and a far point on the diagonal: on the diagonal z = (t, t)
    # the corners (0,0) and (2,2) cancel; (2,0) and (0,2) pull back by 2 (2t - 2) / (sqrt 2 r),
    # r = sqrt((2-t)^2 + t^2); the far point pulls forward by 1. Balance: t = 1 + 1/sqrt(3).
    U = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1e6, 1e6]])
    z, c, _ = A.geometric_median(U, return_weights=True)
    assert z == pytest.approx([1 + 1 / np.sqrt(3)] * 2, abs=1e-4)
    assert c[4] < 1e-6  # the far point's convex weight: its pull is a unit vector, not its size


def test_geometric_median_weighted_hand_computed():
    # two points, weights 0.7 and 0.3: the heavier point is the minimiser (0.3 * 10 < 0.7 * 10)
    z = A.geometric_median(np.array([[0.0], [10.0]]), np.array([0.7, 0.3]))
    assert z[0] == pytest.approx(0.0, abs=1e-4)


def test_centered_clipping_hand_computed():
    U = np.array([[0.0, 0.0], [3.0, 4.0]])
    w = np.array([0.5, 0.5])
    # tau = 1 from v0 = 0: clip(0) = 0, clip((3, 4)) = (0.6, 0.8); v1 = (0.3, 0.4)
    v, share = A.centered_clipping(U, w, np.zeros(2), tau=1.0, n_iter=1, return_weights=True)
    assert v == pytest.approx([0.3, 0.4])
    assert share == pytest.approx([5 / 6, 1 / 6])  # a = (0.5 * 1, 0.5 * 1/5)
    # second iteration from (0.3, 0.4): (-0.3, -0.4) unclipped (norm 0.5), (2.7, 3.6) clipped to
    # (0.6, 0.8); v2 = (0.3, 0.4) + ((-0.3, -0.4) + (0.6, 0.8)) / 2 = (0.45, 0.6)
    assert A.centered_clipping(U, w, np.zeros(2), tau=1.0, n_iter=2) == pytest.approx([0.45, 0.6])
    # a start already at the mean of unclipped updates stays there
    assert A.centered_clipping(U, w, np.array([1.5, 2.0]), tau=10.0, n_iter=3) == pytest.approx([1.5, 2.0])


def test_norm_clip_hand_computed():
    U = np.array([[3.0, 4.0], [0.0, 1.0]])
    w = np.array([0.5, 0.5])
    # (3, 4) has norm 5 -> (0.6, 0.8); (0, 1) is within M = 1; mean (0.3, 0.9)
    out, share = A.norm_clip(U, w, 1.0, return_weights=True)
    assert out == pytest.approx([0.3, 0.9])
    assert share == pytest.approx([1 / 6, 5 / 6])  # (0.5 / 5, 0.5) / 0.6
    noisy = A.norm_clip(U, w, 1.0, noise_std=0.5, rng=np.random.default_rng(0))
    assert noisy == pytest.approx(np.array([0.3, 0.9]) + np.random.default_rng(0).normal(0, 0.5, 2))
    with pytest.raises(DataError, match="needs a numpy Generator"):
        A.norm_clip(U, w, 1.0, noise_std=0.5)


def test_fltrust_hand_computed():
    g0 = np.array([1.0, 0.0])
    U = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 0.0]])
    # cos with g0: 1, 0, 1/sqrt 2, -1, undefined (zero update: 0) -> TS = 1, 0, 0.7071, 0, 0
    # rescaled to |g0| = 1: (1, 0) and (1, 1)/sqrt 2; aggregate = ((1, 0) + (0.5, 0.5)) / (1 + 0.7071)
    out, share, ts = A.fltrust(U, g0, return_weights=True)
    r = 1 / np.sqrt(2)
    assert ts == pytest.approx([1, 0, r, 0, 0])
    assert out == pytest.approx(np.array([1.5, 0.5]) / (1 + r))
    assert share == pytest.approx(np.array([1, 0, r, 0, 0]) / (1 + r))


def test_fltrust_zero_total_trust_returns_a_zero_update():
    out, share, ts = A.fltrust(np.array([[-1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 0.0]), return_weights=True)
    assert out.tolist() == [0.0, 0.0] and share.tolist() == [0.0, 0.0] and ts.tolist() == [0.0, 0.0]
    with pytest.raises(DataError, match="norm 0"):
        A.fltrust(np.ones((2, 2)), np.zeros(2))


def test_foolsgold_weights_hand_computed():
    H = np.array([[1.0, 0.0, 0.0, 0.0], [0.8, 0.6, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.6, 0.8]])
    # unit rows: cs(0,1) = 0.8, cs(2,3) = 0.6, the rest 0. v = (0.8, 0.8, 0.6, 0.6); pardoning only
    # scales the zero similarities of clients 2, 3 with 0, 1. alpha = 1 - max = (0.2, 0.2, 0.4, 0.4)
    # / 0.4 = (0.5, 0.5, 1, 1) -> 1 becomes 0.99. logit: ln(1) + 0.5 = 0.5, ln(99) + 0.5 = 5.0951
    assert A.foolsgold_weights(H, 1.0) == pytest.approx([0.5, 0.5, 1.0, 1.0])
    assert A.foolsgold_weights(H, 0.1) == pytest.approx([0.05, 0.05, 0.509512, 0.509512], abs=1e-6)


def test_foolsgold_weights_sybil_pair_and_pardoning():
    H = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    # cs(0,1) = 1, cs(0,2) = cs(1,2) = 0.6; v = (1, 1, 0.6). Client 2 is pardoned against 0 and 1
    # (v_j = 1 > 0.6): 0.6 * 0.6 / 1 = 0.36. alpha = (0, 0, 0.64) -> (0, 0, 1) -> 0.99 -> logit 5.1
    # -> clipped to 1; the sybils' logit is ln 0 = -inf -> 0.
    assert A.foolsgold_weights(H).tolist() == [0.0, 0.0, 1.0]
    assert A.foolsgold_weights(H[:1]).tolist() == [1.0]  # alone: nobody to resemble
    assert A.foolsgold_weights(np.ones((3, 2))).tolist() == [0.0, 0.0, 0.0]  # everyone has a twin


def test_nnm_hand_computed():
    U = np.array([[0.0], [1.0], [3.0], [10.0]])
    # f = 1: the n - f = 3 nearest, self included.
    # 0: {0, 1, 3} -> 4/3; 1: {1, 0, 3} -> 4/3; 3: {3, 1, 0} -> 4/3; 10: {10, 3, 1} -> 14/3
    Y, M = A.nnm(U, 1, return_mixing=True)
    assert Y[:, 0] == pytest.approx([4 / 3, 4 / 3, 4 / 3, 14 / 3])
    assert M.sum(axis=1) == pytest.approx(np.ones(4)) and M[3].tolist() == [0, 1 / 3, 1 / 3, 1 / 3]
    with pytest.raises(AssumptionError, match=r"NNM needs n > 2f; got n=4, f=2"):
        A.nnm(U, 2)


def test_nnm_keeps_each_update_in_its_own_neighbourhood_among_duplicates():
    Y, M = A.nnm(np.array([[1.0], [1.0], [1.0], [5.0]]), 1, return_mixing=True)
    assert np.diag(M) == pytest.approx([1 / 3] * 4)
    assert Y[3, 0] == pytest.approx(7 / 3)  # 5 and two of the 1s
