"""Data-stage detectors: reference values for the maths, planted-poison recall floors, bad input."""

import numpy as np
import pytest

from poisonlab import DataError, InvalidParameterError
from poisonlab.defenses.data import (
    ActivationClustering,
    DuplicateConflicts,
    LabelIssues,
    RankCombiner,
    RobustOutliers,
    SpectralSignatures,
    Spectre,
)
from poisonlab.defenses.data.activation_clustering import cluster_scores
from poisonlab.defenses.data.combine import rank_average, votes_then_rank
from poisonlab.defenses.data.duplicates import conflict_fraction
from poisonlab.defenses.data.spectral import spectral_scores
from poisonlab.defenses.data.spectre import que_scores
from poisonlab.evaluation.detection import auroc, detection_report, precision_recall_f1, tpr_at_fpr

# --- the maths, by hand ------------------------------------------------------------------------


def test_spectral_scores_hand_computed():
    R = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.1], [0.0, -0.1]])
    assert np.allclose(spectral_scores(R), [1.0, 1.0, 0.0, 0.0])


def test_spectral_scores_project_centred_features():
    # Tran et al. centre before projecting: a constant offset must not change any score.
    # (Peers that project uncentred features would score every point by the offset.)
    rng = np.random.default_rng(0)
    R = rng.normal(size=(50, 4))
    assert np.allclose(spectral_scores(R), spectral_scores(R + 100.0))
    wide = rng.normal(size=(5, 40))  # n < d takes the SVD branch
    assert np.allclose(spectral_scores(wide), spectral_scores(wide - 3.0))


def test_que_score_alpha_zero_is_squared_norm_over_d():
    Z = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    assert np.allclose(que_scores(Z, alpha=0.0), (Z ** 2).sum(1) / 2)


def test_cluster_scores_encode_the_paper_rule():
    m = np.array([True, False])
    # size 0.1 < 0.35 and silhouette 0.3 > 0.1: min(3, 0.9/0.65) = 1.385 > 1
    assert np.allclose(cluster_scores(m, 0.1, 0.3, 0.35, 0.1), [0.9 / 0.65, 0.0])
    # silhouette below its threshold: the score stays under 1
    assert cluster_scores(m, 0.1, 0.05, 0.35, 0.1)[0] == pytest.approx(0.5)
    # cluster too large (0.45 > 0.35): under 1
    assert cluster_scores(m, 0.45, 0.9, 0.35, 0.1)[0] == pytest.approx(0.55 / 0.65)


def test_conflict_fraction_hand_computed():
    groups = np.array([0, 0, 0, 1, 2, 2])
    y = np.array([0, 0, 1, 1, 2, 2])
    assert np.allclose(conflict_fraction(groups, y, 3), [0.5, 0.5, 1.0, 0.0, 0.0, 0.0])


def test_rank_average_and_votes_hand_computed():
    S = np.array([[1.0, 2.0, 3.0], [30.0, 10.0, 20.0]])
    ranks = [(1 / 3 + 1) / 2, (2 / 3 + 1 / 3) / 2, (1 + 2 / 3) / 2]
    assert np.allclose(rank_average(S), ranks)
    F = np.array([[False, False, True], [True, False, False]])
    assert np.allclose(votes_then_rank(S, F), np.add([1, 0, 1], ranks))


def test_per_class_rule_flags_the_top_of_each_class():
    # one sample per class far out: with epsilon = 1/6, 1.5 epsilon of 4 samples is ceil(1.0) = 1
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (4, 3)), rng.normal(20, 1, (4, 3))]
    X[0] += [9, 0, 0]
    X[7] -= [0, 9, 0]
    y = np.repeat([0, 1], 4)
    det = SpectralSignatures(contamination=1 / 6, threshold_rule="per_class").fit(X, y)
    assert np.flatnonzero(det.flags_).tolist() == [0, 7]
    assert det.threshold_ == 0.0 and np.array_equal(det.flags_, det.scores_ > 0)
    # ranks within each class are those of the default rule's scores
    plain = SpectralSignatures().fit(X, y).scores_
    for c in (0, 1):
        assert np.array_equal(np.argsort(det.scores_[y == c]), np.argsort(plain[y == c]))


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


# --- planted poison ----------------------------------------------------------------------------

def _planted(n_per_class=500, n_classes=5, n_poison=50, d=32, shift=3.0, seed=0):
    """Gaussian classes; ``n_poison`` samples of class 0 moved along one direction (a backdoor
    cluster in representation space)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, size=(n_classes, d))
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = centres[y] + rng.normal(size=(len(y), d))
    poison = np.zeros(len(y), bool)
    idx = rng.choice(n_per_class, n_poison, replace=False)
    poison[idx] = True
    direction = rng.normal(size=d)
    X[idx] += shift * direction / np.linalg.norm(direction) * np.sqrt(d) / 2
    return X, y, poison


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


@pytest.mark.parametrize("seed", [0, 1])
def test_spectre_beats_spectral_at_small_epsilon(seed):
    # 12 poisons in a class of 500 (2.4%), clean data with 4 high-variance directions: the top
    # singular vector is clean variation, so spectral signatures miss the poisons; robust
    # whitening removes that variation and the QUE score finds them (Hayase et al. 2021).
    rng = np.random.default_rng(seed)
    d, n = 32, 500
    scales = np.ones(d)
    scales[:4] = 4.0
    y = np.repeat(np.arange(3), n)
    X = rng.normal(0, 5, (3, d))[y] + rng.normal(size=(len(y), d)) * scales
    idx = rng.choice(n, 12, replace=False)
    poison = np.zeros(len(y), bool)
    poison[idx] = True
    direction = np.zeros(d)
    direction[10:] = rng.normal(size=d - 10)
    X[idx] += 6.0 * direction / np.linalg.norm(direction)
    # the paper's rule: remove 1.5 epsilon of each class (SPECTRE keeps its default trim, 2 x 0.05)
    eps = 12 / n
    spec = SpectralSignatures(contamination=eps, threshold_rule="per_class").fit(X, y).flags_[poison].mean()
    spectre = Spectre(n_components=16, contamination=eps, trim_fraction=0.1,
                      threshold_rule="per_class").fit(X, y).flags_[poison].mean()
    assert spectre >= 0.9 and spec <= 0.2


@pytest.mark.parametrize("reduction, n_poison", [("pca", 100), ("ica", 50)])
def test_activation_clustering_planted(reduction, n_poison):
    # 10% of the class for ICA: in whitened coordinates a cluster holding a fraction p sits only
    # 1/sqrt(p(1-p)) standard deviations away along its direction, so with 9 isotropic noise
    # dimensions a 20% cluster's silhouette is capped near 0.13 (below the 0.15 threshold).
    X, y, poison = _planted(n_poison=n_poison, shift=4.0)
    det = ActivationClustering(reduction=reduction).fit(X, y)
    assert det.flags_[poison].mean() >= 0.95  # TPR floor
    assert det.flags_[~poison].mean() <= 0.01  # FPR ceiling
    assert det.class_report_[0]["poisoned"] and not any(det.class_report_[c]["poisoned"] for c in range(1, 5))


def test_clustering_maths_match_references():
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from poisonlab.defenses.data._clustering import pca_scores, silhouette, two_means, whiten

    rng = np.random.default_rng(3)
    Z = np.r_[rng.normal(size=(300, 5)), rng.normal(size=(40, 5)) + 4.0]
    labels = two_means(Z, seed=0)
    ref = KMeans(2, n_init=10, random_state=0).fit_predict(Z)
    assert max(np.mean(labels == ref), np.mean(labels != ref)) == 1.0
    assert silhouette(Z, labels, sample_size=10_000) == pytest.approx(silhouette_score(Z, labels))
    # whitening then any rotation (what FastICA adds) leaves distances, hence clusters, unchanged
    W = whiten(pca_scores(Z, 5))
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert np.allclose(np.linalg.norm(W[:50] - W[1], axis=1), np.linalg.norm((W @ Q)[:50] - (W @ Q)[1], axis=1))
    assert np.allclose(np.cov(W, rowvar=False, bias=True), np.eye(5), atol=1e-9)
    assert np.array_equal(two_means(Z, seed=4), two_means(Z, seed=4))


def test_exclusionary_reclassification_tells_poison_from_bimodal_class():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, size=(3, 16))
    y = np.repeat([0, 1, 2], 300)
    X = centres[y] + rng.normal(size=(900, 16))
    # poisons: class-1 samples relabelled 0 (as a dirty-label backdoor's are)
    X = np.r_[X, centres[1] + rng.normal(size=(60, 16)) + 1.5]
    y = np.r_[y, np.zeros(60, int)]
    det = ActivationClustering(reduction="pca").fit(X, y)
    assert det.class_report_[0]["poisoned"]
    assert det.exclusionary_reclassification(X, y) == {0: True}
    # a class that is merely bimodal: its small mode is still classified as itself
    Xb, yb, _ = _planted(n_poison=100, shift=4.0)
    det_b = ActivationClustering(reduction="pca").fit(Xb, yb)
    assert det_b.exclusionary_reclassification(Xb, yb) == {0: False}


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


# --- bad input ---------------------------------------------------------------------------------

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


def test_robust_whiten_leaves_gross_outliers_out_of_the_estimate():
    from poisonlab.defenses.data.spectre import robust_whiten, whiten

    rng = np.random.default_rng(0)
    R = rng.normal(size=(300, 3))
    R[:15] += 40.0
    Z = robust_whiten(R, n_trim=30)
    clean = Z[15:]
    # the estimate is the trimmed clean bulk: clean rows come out near zero mean and unit
    # covariance (trimming the 15 clean tails shrinks the estimate a little, so slightly above 1)
    assert np.abs(clean.mean(axis=0)).max() < 0.2
    assert np.allclose(np.diag(np.cov(clean.T)), 1.0, atol=0.35)
    assert np.linalg.norm(Z[:15], axis=1).min() > 20
    # plain whitening lets the outliers in: they no longer stand out
    assert np.linalg.norm(whiten(R, np.ones(300, bool))[:15], axis=1).max() < 5
    # nothing trimmed = plain whitening; the input is untouched
    before = R.copy()
    assert np.allclose(robust_whiten(R, 0), whiten(R, np.ones(300, bool)))
    assert np.array_equal(R, before)
