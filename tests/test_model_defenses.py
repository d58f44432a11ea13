"""Model- and inference-stage defenses: STRIP, Neural Cleanse, fine-pruning, file safety."""

import pickle

import numpy as np
import pytest
import torch

from poisonlab import AssumptionError, DataError, InvalidParameterError
from poisonlab.attacks.data import BadNets
from poisonlab.data import load_digits
from poisonlab.defenses.inference import STRIP
from poisonlab.defenses.inference.strip import mean_entropy, mix_words, settled, swap_features
from poisonlab.defenses.model import (
    NeuralCleanse,
    UnsafeModelError,
    anomaly_index,
    fine_prune,
    load_state_dict,
    scan_model_file,
)
from poisonlab.evaluation.metrics import attack_success_rate
from poisonlab.models import TorchClassifier, TrainConfig, build_model


def _cnn(spec):
    return build_model("cnn", spec, widths=(16, 32), hidden=64)


@pytest.fixture(scope="module")
def backdoored_digits():
    s = load_digits()
    atk = BadNets(target=3, poison_rate=0.1, value=1.0, random_state=0)
    res = atk.poison(s.train.X, s.train.y)
    clf = TorchClassifier(_cnn, config=TrainConfig(epochs=30, lr=3e-3, batch_size=64)).fit(res.X, res.y)
    return s, atk, clf


# --- the maths ---------------------------------------------------------------------------------

def test_mean_entropy_is_over_classes_then_averaged_over_overlays():
    probs = np.array([[[0.5, 0.5], [1.0, 0.0]]])  # one input, two overlays
    assert mean_entropy(probs).tolist() == [0.5]  # (1 bit + 0 bits) / 2
    uniform = np.full((1, 3, 4), 0.25)
    assert mean_entropy(uniform)[0] == pytest.approx(2.0)


def test_anomaly_index_hand_computed():
    l1 = np.array([10.0, 11.0, 9.0, 10.0, 2.0])
    # median 10, MAD = median(|0,1,1,0,8|) = 1 -> index (10 - l1) / 1.4826
    assert np.allclose(anomaly_index(l1), (10 - l1) / 1.4826)
    assert anomaly_index(l1)[4] > 2 and (anomaly_index(l1)[:4] < 2).all()


def test_superimposition_strategies():
    rng = np.random.default_rng(0)
    X = np.zeros((2, 4))
    over = np.ones((2, 3, 4))
    mixed = swap_features(X, over, rng, 0.5)
    assert mixed.shape == (2, 3, 4) and set(np.unique(mixed)) <= {0.0, 1.0}
    words = mix_words(np.array(["a b c d"], dtype=object), np.array([["x y z w"]], dtype=object), rng, 0.5)
    assert set(words[0, 0].split()) <= set("abcdxyzw")


# --- STRIP -------------------------------------------------------------------------------------

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


# --- Neural Cleanse ----------------------------------------------------------------------------

def test_neural_cleanse_finds_the_target(backdoored_digits):
    s, _, clf = backdoored_digits
    nc = NeuralCleanse(epochs=12, random_state=0).fit(s.test.X[:200], model=clf)
    assert np.flatnonzero(nc.flags_).tolist() == [3]
    assert nc.l1_norms_.argmin() == 3 and nc.scores_[3] > 2
    mask, pattern = nc.reversed_trigger(3)
    assert mask.shape == (8, 8) and pattern.shape == (1, 8, 8)
    assert mask[-3:, -3:].mean() > mask.mean()  # the reversed mask sits where the patch was


def test_neural_cleanse_unlearning_repairs_a_copy(backdoored_digits):
    s, atk, clf = backdoored_digits
    nc = NeuralCleanse(epochs=12, random_state=0).fit(s.test.X[:200], model=clf)
    before = [p.detach().clone() for p in clf.module_.parameters()]
    fixed = nc.unlearn(clf, s.train.X, s.train.y, epochs=3)
    keep = s.test.y != 3
    asr_before = attack_success_rate(s.test.y[keep], clf.predict(atk.apply_trigger(s.test.X[keep])), 3)
    asr_after = attack_success_rate(s.test.y[keep], fixed.predict(atk.apply_trigger(s.test.X[keep])), 3)
    assert asr_after < asr_before - 0.3
    assert all(torch.equal(a, b) for a, b in zip(before, clf.module_.parameters())), "original untouched"


def test_neural_cleanse_bad_input(backdoored_digits):
    s, _, clf = backdoored_digits
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(InvalidParameterError, match="differentiable torch model"):
        NeuralCleanse().fit(s.test.X[:10], model=LogisticRegression())
    with pytest.raises(DataError, match="do not fit the model"):
        NeuralCleanse(epochs=1).fit(np.zeros((4, 3, 8, 8), np.float32), model=clf)
    with pytest.raises(DataError, match="dimensions"):
        NeuralCleanse().fit(np.zeros((4, 64)), model=clf)


# --- fine-pruning ------------------------------------------------------------------------------

def test_fine_pruning_prunes_a_copy_within_the_accuracy_budget(backdoored_digits):
    s, atk, clf = backdoored_digits
    keep = s.test.y != 3
    res = fine_prune(clf, s.train.X, s.train.y, X_val=s.test.X, y_val=s.test.y, max_accuracy_drop=0.04,
                     asr_fn=lambda m: attack_success_rate(s.test.y[keep], m.predict(atk.apply_trigger(s.test.X[keep])), 3))
    assert res.layer == "conv2" and 0 < len(res.pruned) < res.n_channels
    assert all(res.curve[0]["clean_accuracy"] - r["clean_accuracy"] <= 0.04 for r in res.curve)
    conv = res.model.module_.conv2
    assert conv.weight[res.pruned].abs().sum() == 0, "pruned channels stay zero after fine-tuning"
    assert clf.module_.conv2.weight[res.pruned].abs().sum() > 0, "the user's model is not pruned"
    assert "attack_success_rate" in res.final


# --- model-file safety -------------------------------------------------------------------------

class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_payload_file_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps({"weights": _Payload(marker)}))
    report = scan_model_file(evil)
    assert not report.safe and any("system" in g for g in report.dangerous)
    with pytest.raises(UnsafeModelError, match="DANGEROUS"):
        load_state_dict(evil)
    assert not marker.exists(), "the payload must never run"


def test_safe_weights_load_and_truncated_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    module = build_model("mlp", __import__("poisonlab").models.ModelSpec((4,), 2), hidden=(3,))
    pt = tmp_path / "w.pt"
    torch.save(module.state_dict(), pt)
    assert scan_model_file(pt).safe
    state = load_state_dict(pt)
    assert set(state) == set(module.state_dict())
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(st))
    assert load_state_dict(st).keys() == state.keys()
    pt.write_bytes(pt.read_bytes()[:100])
    with pytest.raises(UnsafeModelError, match="could not be scanned|refused"):
        load_state_dict(pt)
    st.write_bytes(st.read_bytes()[:20])
    assert not scan_model_file(st).safe
    with pytest.raises(DataError, match="does not exist"):
        scan_model_file(tmp_path / "nope.pt")


def test_normal_boundary_hand_computed():
    from scipy.stats import norm

    from poisonlab.base import normal_fpr_threshold

    ref = np.array([1.0, 2.0, 3.0, 4.0] * 25)  # mean 2.5, ML std sqrt(1.25)
    assert normal_fpr_threshold(ref, 0.01) == pytest.approx(2.5 + norm.ppf(0.99) * np.sqrt(1.25))
    assert normal_fpr_threshold(ref, 0.5) == pytest.approx(2.5)
    with pytest.raises(AssumptionError, match="needs at least 100"):
        normal_fpr_threshold(ref[:50], 0.01)
    with pytest.raises(AssumptionError, match="vary"):
        normal_fpr_threshold(np.ones(200), 0.01)


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
