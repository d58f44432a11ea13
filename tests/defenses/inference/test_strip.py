"""STRIP: the entropy maths, superimposition, separating triggered inputs, the sequential test,
the normal boundary, text and tabular inputs, and bad input."""

import numpy as np
import pytest

from poisonlab import AssumptionError, DataError, InvalidParameterError
from poisonlab.defenses.inference import STRIP
from poisonlab.defenses.inference.strip import mean_entropy, mix_words, settled, swap_features


def test_mean_entropy_is_over_classes_then_averaged_over_overlays():
    probs = np.array([[[0.5, 0.5], [1.0, 0.0]]])  # one input, two overlays
    assert mean_entropy(probs).tolist() == [0.5]  # (1 bit + 0 bits) / 2
    uniform = np.full((1, 3, 4), 0.25)
    assert mean_entropy(uniform)[0] == pytest.approx(2.0)


def test_superimposition_strategies():
    rng = np.random.default_rng(0)
    X = np.zeros((2, 4))
    over = np.ones((2, 3, 4))
    mixed = swap_features(X, over, rng, 0.5)
    assert mixed.shape == (2, 3, 4) and set(np.unique(mixed)) <= {0.0, 1.0}
    words = mix_words(np.array(["a b c d"], dtype=object), np.array([["x y z w"]], dtype=object), rng, 0.5)
    assert set(words[0, 0].split()) <= set("abcdxyzw")


def test_strip_separates_triggered_inputs(backdoored_digits):
    s, atk, clf = backdoored_digits
    det = STRIP(n_overlays=20, false_positive_rate=0.05).fit(s.test.X[:300], model=clf)
    clean, rest = s.test.X[300:], s.test.y[300:]
    trig = atk.apply_trigger(clean[rest != 3])
    far = det.flag(trig).mean()
    frr = det.flag(clean).mean()
    assert far >= 0.8 and frr <= 0.15  # triggered inputs flagged, clean ones mostly not
    assert det.score(trig).mean() > det.score(clean).mean()  # one polarity: higher = more suspicious


def test_strip_is_deterministic_and_batch_independent(backdoored_digits):
    s, _, clf = backdoored_digits
    a = STRIP(n_overlays=10, batch_size=7).fit(s.test.X[:250], model=clf)
    b = STRIP(n_overlays=10, batch_size=50).fit(s.test.X[:250], model=clf)
    assert np.allclose(a.score(s.test.X[300:320]), a.score(s.test.X[300:320]))
    assert a.scores_.shape == b.scores_.shape


def test_strip_bad_input(backdoored_digits):
    s, _, clf = backdoored_digits
    with pytest.raises(DataError, match="needs at least 2 \\* n_overlays = 200 clean inputs"):
        STRIP(n_overlays=100).fit(s.test.X[:150], model=clf)
    with pytest.raises(AssumptionError, match="false_positive_rate=0.001 needs at least 1000"):
        STRIP(n_overlays=10, false_positive_rate=0.001).fit(s.test.X[:300], model=clf)
    det = STRIP(n_overlays=10).fit(s.test.X[:300], model=clf)
    with pytest.raises(DataError, match="do not match"):
        det.score(np.zeros((2, 1, 6, 6)))


def test_settled_is_a_z_test_on_the_running_mean():
    # 4 overlays with entropies summing to 8 (mean 2) and squares to 18: sample var (18/4 - 4) * 4/3
    total, total_sq = np.array([8.0, 8.0]), np.array([18.0, 18.0])
    se = np.sqrt((18 / 4 - 4) * 4 / 3) / 2  # 0.408
    assert settled(total, total_sq, 4, 2.0 - 3.01 * se, 3.0, 0.0).tolist() == [True, True]
    assert settled(total, total_sq, 4, 2.0 - 2.99 * se, 3.0, 0.0).tolist() == [False, False]
    # identical entropies: the floor stands in for the spread
    assert settled(np.array([4.0]), np.array([4.0]), 4, 0.5, 3.0, 0.5).tolist() == [False]
    assert settled(np.array([4.0]), np.array([4.0]), 4, 0.2, 3.0, 0.5).tolist() == [True]


def test_sequential_strip_agrees_with_the_full_run_on_fewer_overlays(backdoored_digits):
    s, atk, clf = backdoored_digits
    full = STRIP(n_overlays=40, false_positive_rate=0.05).fit(s.test.X[:300], model=clf)
    seq = STRIP(n_overlays=40, false_positive_rate=0.05, early_stop=4.0, round_overlays=8).fit(
        s.test.X[:300], model=clf)
    assert seq.threshold_ == full.threshold_  # calibrated with all N overlays either way
    clean, rest = s.test.X[300:], s.test.y[300:]
    X = np.r_[clean, atk.apply_trigger(clean[rest != 3])]
    scores, used = seq.score(X, return_overlays=True)
    agree = (seq.flag(X) == full.flag(X)).mean()
    assert agree >= 0.97
    # triggered inputs are far below the boundary and settle early; these digits' clean inputs
    # lie close to it (8x8 images), so many of them need every overlay
    assert used[len(clean):].mean() < 0.5 * 40 and used.mean() < 0.8 * 40
    assert used.min() == 8 and used.max() == 40
    # inputs that ran all N overlays get exactly the full run's score (the overlays are a prefix)
    same = used == 40
    assert np.allclose(scores[same], full.score(X)[same])
    with pytest.raises(InvalidParameterError, match="early_stop"):
        STRIP(n_overlays=10, early_stop=-1.0).fit(s.test.X[:300], model=clf)


def test_strip_on_text_and_tabular():
    class TextModel:  # spam if "cf" present, else by length parity (a stand-in classifier)
        def predict_proba(self, texts):
            p = np.array([[0.0, 1.0] if "cf" in t.split() else [0.6, 0.4] if len(t) % 2 else [0.4, 0.6]
                          for t in texts])
            return p
    texts = np.array([f"message number {i} about lunch" for i in range(300)], dtype=object)
    det = STRIP(n_overlays=10, false_positive_rate=0.05).fit(texts, model=TextModel())
    assert det.mode_ == "words" and det.scores_.shape == (150,)

    class TabModel:
        def predict_proba(self, X):
            p1 = 1 / (1 + np.exp(-X.sum(axis=1)))
            return np.c_[1 - p1, p1]
    tab = np.random.default_rng(0).normal(size=(300, 5))
    assert STRIP(n_overlays=10, false_positive_rate=0.05).fit(tab, model=TabModel()).mode_ == "swap"


def test_strip_normal_boundary_is_the_papers_rule(backdoored_digits):
    """boundary="normal": the threshold is the FRR percentile of a normal fitted to the clean
    references (in entropy: mean - z * std), the same overlays and scores as "quantile"."""
    from scipy.stats import norm

    s, _, clf = backdoored_digits
    q = STRIP(n_overlays=10, false_positive_rate=0.05).fit(s.test.X[:300], model=clf)
    n = STRIP(n_overlays=10, false_positive_rate=0.05, boundary="normal").fit(s.test.X[:300], model=clf)
    assert np.array_equal(q.scores_, n.scores_)
    entropy = np.log2(10) - n.scores_
    boundary = entropy.mean() - norm.ppf(0.95) * entropy.std()
    assert np.log2(10) - n.threshold_ == pytest.approx(boundary)
    assert np.array_equal(n.flags_, n.scores_ > n.threshold_)
    with pytest.raises(InvalidParameterError, match="boundary"):
        STRIP(n_overlays=10, boundary="gauss").fit(s.test.X[:300], model=clf)


def test_strip_normal_boundary_refuses_a_boundary_below_zero_bits():
    """A model confident on every mixture: the clean entropies pile up near 0 bits with a tail
    above, and a normal fitted to them puts the 1% boundary below 0 bits."""
    class M:
        def predict_proba(self, X):
            X = X.reshape(len(X), -1)
            p = np.clip(X[:, :1] ** 8, 0, 0.5)  # mostly ~0, a few mixtures uncertain
            return np.c_[1 - p, p]

    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 0.55, (400, 1, 2, 2))
    STRIP(n_overlays=10, false_positive_rate=0.01).fit(clean, model=M())  # the quantile works
    with pytest.raises(AssumptionError, match="below the lowest entropy possible"):
        STRIP(n_overlays=10, false_positive_rate=0.01, boundary="normal").fit(clean, model=M())
