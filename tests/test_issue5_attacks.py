"""SIG, WaNet, label-consistent and linear-model poisoning: hand-computed maths, planted
behaviour and bad input."""

import numpy as np
import pytest

from poisonlab.attacks.data import SIG, AdversarialLabelFlip, LabelConsistent, RandomLabelFlip, SVMPoisoning, WaNet
from poisonlab.attacks.triggers import sinusoid, warp, warp_grid, warping_field
from poisonlab.exceptions import DataError, InvalidParameterError


def _images(n=60, classes=3, size=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.6, (n, 1, size, size)).astype(np.float32), np.arange(n) % classes


# --- SIG -----------------------------------------------------------------------------------------

def test_sinusoid_is_the_papers_signal():
    v = sinusoid(2, 8, 0.1, 2)
    assert v.shape == (2, 8)
    assert np.allclose(v[0], 0.1 * np.sin(2 * np.pi * np.arange(8) * 2 / 8))
    assert np.array_equal(v[0], v[1])


def test_sig_touches_only_target_class_and_keeps_labels():
    X, y = _images()
    res = SIG(target=2, n_poison=8, delta=0.05, clip=(0, 1), random_state=0).poison(X, y)
    assert np.array_equal(res.y, y) and (y[res.indices] == 2).all()
    diff = res.X[res.indices] - X[res.indices]
    assert np.allclose(diff[:, 0, 0], sinusoid(10, 10, 0.05, 6)[0], atol=1e-6)  # inside [0.2, 0.6]: no clipping
    assert res.info["fraction_of_target_class"] == pytest.approx(8 / 20)
    T = SIG(target=2, n_poison=8, delta=0.05, test_delta=0.1, clip=(0, 1), random_state=0)
    T.poison(X, y)
    assert np.abs(T.apply_trigger(X[:2]) - X[:2]).max() == pytest.approx(np.abs(sinusoid(10, 10, 0.1, 6)).max(), abs=1e-6)


def test_sig_bad_input():
    X, y = _images()
    with pytest.raises(InvalidParameterError, match="only 20 samples in target class 0"):
        SIG(target=0, n_poison=21).poison(X, y)
    with pytest.raises(InvalidParameterError, match="delta"):
        SIG(target=0, n_poison=2, delta=0).poison(X, y)
    with pytest.raises(DataError):
        SIG(target=0, n_poison=2).poison(X.reshape(60, -1), y)


# --- WaNet ---------------------------------------------------------------------------------------

def test_warp_with_zero_strength_is_the_identity():
    X, _ = _images(n=4)
    field = warping_field(4, 10, 10, np.random.default_rng(0))
    assert np.allclose(warp(X, warp_grid(field, 0.0)), X, atol=1e-6)
    assert np.allclose(np.abs(field).mean(), 1.0, atol=0.35)  # normalised by mean |P| before upsampling
    # a positive strength moves pixels by at most s/H grid units (the clip keeps it in the image)
    g = warp_grid(field, 0.5)
    ident = warp_grid(field, 0.0)
    assert np.abs(g - ident).max() <= 0.5 * np.abs(field).max() / 10 + 1e-12


def test_wanet_poison_and_noise_mode():
    X, y = _images(n=90)
    res = WaNet(target=0, n_poison=9, cross_ratio=2.0, random_state=1).poison(X, y)
    relabelled = res.poison_mask & (res.y != y)
    noise = res.poison_mask & (res.y == y)
    assert relabelled.sum() == 9 and noise.sum() == 18 and (res.y[relabelled] == 0).all()
    atk = WaNet(target=0, n_poison=9, random_state=1)
    atk.poison(X, y)
    # the test-time trigger is exactly the training warp (noise-mode samples got a jittered one)
    idx = np.flatnonzero(relabelled)
    assert np.allclose(atk.apply_trigger(X[idx]), res.X[idx])


def test_wanet_bad_input():
    X, y = _images()
    with pytest.raises(InvalidParameterError, match="k"):
        WaNet(k=1, n_poison=2).poison(X, y)
    with pytest.raises(InvalidParameterError, match="strength"):
        WaNet(strength=0, n_poison=2).poison(X, y)
    with pytest.raises(Exception, match="poison"):
        WaNet().apply_trigger(X)


# --- label-consistent ----------------------------------------------------------------------------

def _surrogate(X, y, seed=0):
    from poisonlab.models import ModelSpec, TorchClassifier, TrainConfig, build_model

    return TorchClassifier(lambda spec: build_model("cnn", spec, widths=(4, 8), hidden=16),
                           config=TrainConfig(epochs=10, lr=0.01, batch_size=32, seed=seed)).fit(X, y)


def test_label_consistent_pgd_stays_in_budget_and_hurts_the_surrogate():
    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0  # learnable: each class lights one pixel
    model = _surrogate(X, y)
    atk = LabelConsistent(target=1, n_poison=20, eps=0.1, steps=20, patch_size=2, random_state=0)
    res = atk.poison(X, y, model=model)
    assert np.array_equal(res.y, y) and (y[res.indices] == 1).all()
    outside_patch = (res.X - X)[res.indices][:, :, :8, :8]
    assert np.abs(outside_patch).max() <= 0.1 + 1e-6
    plain = LabelConsistent(target=1, n_poison=20, perturb=False, patch_size=2, random_state=0).poison(X, y, model=model)
    # PGD raised the surrogate's loss on the (pre-trigger) poisons
    import torch
    import torch.nn.functional as F

    def loss(Z):
        with torch.no_grad():
            return float(F.cross_entropy(model.module_(torch.as_tensor(Z)), torch.as_tensor(y[res.indices])))
    base = X[res.indices].copy()
    adv = res.X[res.indices].copy()
    adv[:, :, 8:, 8:] = base[:, :, 8:, 8:]
    assert loss(adv) > loss(base) + 0.5
    assert np.array_equal(plain.X[:, :, :8, :8], X[:, :, :8, :8])


def test_label_consistent_bad_input():
    X, y = _images()
    model = _surrogate(X, y)
    with pytest.raises(InvalidParameterError, match="eps"):
        LabelConsistent(eps=1.5, n_poison=2).poison(X, y, model=model)
    with pytest.raises(InvalidParameterError, match="eps"):
        LabelConsistent(eps=0, n_poison=2).poison(X, y, model=model)
    with pytest.raises(InvalidParameterError, match="model"):
        LabelConsistent(n_poison=2).poison(X, y)
    with pytest.raises(DataError, match="do not fit the surrogate"):
        LabelConsistent(n_poison=2).poison(np.zeros((60, 1, 28, 28), np.float32) + 0.1, y, model=model)
    with pytest.raises(InvalidParameterError, match="torch module"):
        LabelConsistent(n_poison=2).poison(X, y, model=object())
    with pytest.raises(InvalidParameterError, match="only 20 samples in target class 0"):
        LabelConsistent(target=0, n_poison=25).poison(X, y, model=model)
    with pytest.raises(InvalidParameterError, match="pattern"):
        LabelConsistent(n_poison=2, pattern="stripes").poison(X, y, model=model)
    with pytest.raises(InvalidParameterError, match="direction"):
        LabelConsistent(n_poison=2, direction="sideways").poison(X, y, model=model)


def test_label_consistent_random_class_direction_moves_poisons_toward_other_classes():
    import torch

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    model = _surrogate(X, y)
    res = LabelConsistent(target=1, n_poison=20, eps=0.5, steps=30, patch_size=2, direction="random-class",
                          random_state=0).poison(X, y, model=model)
    adv = res.X[res.indices].copy()
    adv[:, :, 8:, 8:] = X[res.indices][:, :, 8:, 8:]  # judge the perturbation, not the patch
    with torch.no_grad():
        before = torch.softmax(model.module_(torch.as_tensor(X[res.indices])), 1)[:, 1]
        after = torch.softmax(model.module_(torch.as_tensor(adv)), 1)[:, 1]
    assert float(after.mean()) < float(before.mean()) - 0.2  # away from the (true) target class
    assert np.abs(res.X - X)[res.indices][:, :, :8, :8].max() <= 0.5 + 1e-6


def test_label_consistent_four_corner_checkerboard():
    atk = LabelConsistent(patch_size=3, pattern="checkerboard", location="four-corners")
    out = atk.apply_trigger(np.full((2, 1, 10, 10), 0.5))
    board = np.array([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]])
    for rs, cs in ((slice(0, 3), slice(0, 3)), (slice(0, 3), slice(7, 10)), (slice(7, 10), slice(0, 3)),
                   (slice(7, 10), slice(7, 10))):
        assert np.array_equal(out[0, 0, rs, cs], board)
    assert (out[:, :, 3:7, :] == 0.5).all()  # nothing between the corners


# --- linear models ---------------------------------------------------------------------------------

def _binary(d=30, n=40, n_val=200, seed=0, shift=0.3):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, d)) + np.where(y[:, None] == 1, shift, -shift)
    yv = np.repeat([0, 1], n_val // 2)
    Xv = rng.normal(size=(n_val, d)) + np.where(yv[:, None] == 1, shift, -shift)
    return X, y, Xv, yv


def test_svm_poison_gradient_matches_finite_differences():
    from sklearn.svm import SVC

    from poisonlab.attacks.data.linear import hinge_loss, svm_poison_gradient

    X, y, Xv, yv = _binary()
    s, sv = np.where(y == 1, 1.0, -1.0), np.where(yv == 1, 1.0, -1.0)
    x_c, s_c = X[5].copy(), 1.0  # a class-0 point labelled 1: an error vector

    def fit(xc):
        return SVC(kernel="linear", C=1.0, tol=1e-12).fit(np.vstack([X, xc[None]]), np.r_[s, s_c])

    m = fit(x_c)
    atk = SVMPoisoning(C=1.0)
    alpha, margin = atk._state(m, len(X) + 1)
    g = sv * m.decision_function(Xv) - 1
    grad = svm_poison_gradient(X, s, alpha[:-1], margin[:-1], x_c, s_c, alpha[-1], Xv, sv, g < 0)
    h = 1e-5
    num = np.array([(hinge_loss(sv * fit(x_c + h * e).decision_function(Xv))
                     - hinge_loss(sv * fit(x_c - h * e).decision_function(Xv))) / (2 * h) for e in np.eye(X.shape[1])])
    assert np.corrcoef(grad, num)[0, 1] > 0.99
    assert np.linalg.norm(grad - num) < 0.1 * np.linalg.norm(num)  # SVC's solver tolerance blurs num


def test_svm_poisoning_raises_validation_loss_and_appends_one_point():
    X, y, Xv, yv = _binary()
    X01 = (X - X.min()) / (X.max() - X.min())
    Xv01 = (Xv - X.min()) / (X.max() - X.min())
    res = SVMPoisoning(n_poison=1, step_size=0.05, max_iter=50, random_state=0).poison(X01, y, X_val=Xv01, y_val=yv)
    assert len(res.y) == len(y) + 1 and res.poison_mask[-1] and res.poison_mask.sum() == 1
    assert res.X.min() >= 0 and res.X.max() <= 1
    trace = res.info["val_hinge_loss"]
    assert len(trace) == 1
    from sklearn.svm import SVC

    clean_loss = np.maximum(0, 1 - np.where(yv == 1, 1, -1) * SVC(kernel="linear").fit(X01, y).decision_function(Xv01)).sum()
    assert trace[0] > clean_loss


def test_adversarial_flips_beat_random_flips():
    from sklearn.svm import SVC

    X, y, Xv, yv = _binary(d=20, n=60, shift=0.6, seed=2)
    err = lambda labels: np.mean(SVC(kernel="linear").fit(X, labels).predict(Xv) != yv)  # noqa: E731
    adv = AdversarialLabelFlip(n_poison=9, random_state=0).poison(X, y, X_val=Xv, y_val=yv)
    rnd = [err(RandomLabelFlip(n_poison=9, random_state=s).poison(X, y).y) for s in range(5)]
    assert (adv.y != y).sum() == 9
    assert err(adv.y) > max(rnd)


def test_linear_attacks_bad_input():
    X, y, Xv, yv = _binary()
    y3 = np.arange(len(y)) % 3
    with pytest.raises(DataError, match="binary"):
        AdversarialLabelFlip(n_poison=2).poison(X, y3)
    with pytest.raises(DataError, match="binary"):
        SVMPoisoning().poison(X, y3, X_val=Xv, y_val=yv)
    with pytest.raises(DataError, match="same features"):
        SVMPoisoning().poison(X, y, X_val=Xv[:, :5], y_val=yv)
    with pytest.raises(DataError, match="outside the training classes"):
        AdversarialLabelFlip(n_poison=2).poison(X, y, X_val=Xv, y_val=yv + 5)
    with pytest.raises(InvalidParameterError, match="both"):
        AdversarialLabelFlip(n_poison=2).poison(X, y, X_val=Xv)
    with pytest.raises(InvalidParameterError, match="X_val"):
        SVMPoisoning().poison(X, y)


# --- feature collision and gradient matching -------------------------------------------------------

def test_feature_collision_moves_poisons_onto_the_target_in_feature_space():
    from poisonlab.attacks.data import FeatureCollision

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    model = _surrogate(X, y)
    target = X[1].copy()  # a class-1 input; bases from class 2
    res = FeatureCollision(base_class=2, n_poison=3, beta=0.01, lr=0.05, steps=300, random_state=0).poison(
        X, y, model=model, target_input=target)
    assert np.array_equal(res.y, y) and (y[res.indices] == 2).all() and res.n_poison == 3
    before, after = np.array(res.info["feature_distance_before"]), np.array(res.info["feature_distance_after"])
    assert (after < 0.5 * before).all()
    capped = FeatureCollision(base_class=2, n_poison=3, beta=0.01, lr=0.05, steps=100, eps=0.05,
                              random_state=0).poison(X, y, model=model, target_input=target)
    assert capped.info["linf"] <= 0.05 + 1e-6


def test_feature_collision_bad_input():
    from poisonlab.attacks.data import FeatureCollision

    X, y = _images()
    model = _surrogate(X, y)
    with pytest.raises(DataError, match="target_input"):
        FeatureCollision(n_poison=2).poison(X, y, model=model, target_input=np.zeros((3, 3)))
    with pytest.raises(InvalidParameterError, match="watermark"):
        FeatureCollision(n_poison=2, watermark=1.0).poison(X, y, model=model, target_input=X[0])
    with pytest.raises(InvalidParameterError, match="only 20 samples in base class 0"):
        FeatureCollision(n_poison=21).poison(X, y, model=model, target_input=X[0])
    with pytest.raises(InvalidParameterError, match="target_input"):
        FeatureCollision(n_poison=2).poison(X, y, model=model)


def test_alignment_loss_hand_values():
    import torch

    from poisonlab.attacks.data.gradient_matching import alignment_loss

    g = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
    assert float(alignment_loss(g, g)) == pytest.approx(0.0, abs=1e-6)
    assert float(alignment_loss(g, [-t for t in g])) == pytest.approx(2.0)
    orth = [torch.tensor([2.0, -1.0]), torch.tensor([[0.0]])]
    assert float(alignment_loss(g, orth)) == pytest.approx(1.0)


def test_gradient_matching_aligns_within_budget():
    from poisonlab.attacks.data import GradientMatching

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    model = _surrogate(X, y)
    atk = GradientMatching(adversarial_class=0, n_poison=10, eps=8 / 255, steps=60, augment=False, random_state=0)
    res = atk.poison(X, y, model=model, target_input=X[1])
    assert np.array_equal(res.y, y) and (y[res.indices] == 0).all()
    assert res.info["linf"] <= 8 / 255 + 1e-6
    short = GradientMatching(adversarial_class=0, n_poison=10, eps=8 / 255, steps=1, augment=False,
                             random_state=0).poison(X, y, model=model, target_input=X[1])
    assert res.info["alignment_loss"] < short.info["alignment_loss"] - 0.05


def test_gradient_matching_bad_input():
    from poisonlab.attacks.data import GradientMatching

    X, y = _images()
    model = _surrogate(X, y)
    with pytest.raises(InvalidParameterError, match="eps"):
        GradientMatching(eps=1.0, n_poison=2).poison(X, y, model=model, target_input=X[0])
    with pytest.raises(DataError, match="target_input"):
        GradientMatching(n_poison=2).poison(X, y, model=model, target_input=np.zeros((2, 5)))
    with pytest.raises(InvalidParameterError, match="only 20 samples in adversarial class 1"):
        GradientMatching(adversarial_class=1, n_poison=30).poison(X, y, model=model, target_input=X[0])


def test_gradient_matching_ensemble_averages_alignment():
    """With two surrogates the reported loss is the mean of each surrogate's alignment loss at
    the crafted poisons, and a one-element list gives the same poison as the bare model."""
    import torch
    import torch.nn.functional as F

    from poisonlab.attacks.data import GradientMatching
    from poisonlab.attacks.data.gradient_matching import alignment_loss

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    models = [_surrogate(X, y, seed=s) for s in (0, 1)]
    kw = dict(adversarial_class=0, n_poison=10, eps=8 / 255, steps=30, augment=False, random_state=0)
    res = GradientMatching(**kw).poison(X, y, model=models, target_input=X[1])
    assert res.info["n_surrogates"] == 2

    def loss(m):
        ps = [p for p in m.module_.parameters()]
        tg = torch.autograd.grad(F.cross_entropy(m.module_(torch.tensor(X[1:2])), torch.tensor([0])), ps)
        pg = torch.autograd.grad(F.cross_entropy(m.module_(torch.tensor(res.X[res.indices])),
                                                 torch.tensor(y[res.indices])), ps)
        return float(alignment_loss(pg, tg))

    assert res.info["alignment_loss"] == pytest.approx(np.mean([loss(m) for m in models]), abs=1e-4)
    one = GradientMatching(**kw).poison(X, y, model=[models[0]], target_input=X[1])
    bare = GradientMatching(**kw).poison(X, y, model=models[0], target_input=X[1])
    assert np.array_equal(one.X, bare.X)
    with pytest.raises(InvalidParameterError, match="non-empty list"):
        GradientMatching(**kw).poison(X, y, model=[], target_input=X[1])
    with pytest.raises(InvalidParameterError, match="lr_schedule"):
        GradientMatching(**{**kw, "lr_schedule": "cosine"}).poison(X, y, model=models[0], target_input=X[1])


def test_gradient_matching_max_gradient_selection():
    """Per-sample gradient norms equal a per-sample autograd loop, and ``max_gradient`` perturbs
    exactly the adversarial-class samples with the largest norms."""
    import torch
    import torch.nn.functional as F

    from poisonlab.attacks.data import GradientMatching
    from poisonlab.attacks.data.gradient_matching import per_sample_gradient_norms

    X, y = _images(n=120)
    X[np.arange(120), 0, y, y] = 1.0
    model = _surrogate(X, y)
    m = model.module_
    norms = per_sample_gradient_norms(m, X[:7], y[:7], batch_size=3)
    ps = list(m.parameters())
    loop = [float(torch.sqrt(sum((g ** 2).sum() for g in torch.autograd.grad(
        F.cross_entropy(m(torch.tensor(X[i:i + 1])), torch.tensor(y[i:i + 1])), ps)))) for i in range(7)]
    assert norms == pytest.approx(loop, rel=1e-4)
    cls = np.flatnonzero(y == 0)
    expect = np.sort(cls[np.argsort(-per_sample_gradient_norms(m, X[cls], y[cls]))[:5]])
    res = GradientMatching(adversarial_class=0, n_poison=5, eps=8 / 255, steps=5, augment=False,
                           selection="max_gradient", random_state=0).poison(X, y, model=model, target_input=X[1])
    assert np.array_equal(res.indices, expect)
    with pytest.raises(InvalidParameterError, match="selection"):
        GradientMatching(n_poison=2, selection="largest").poison(X, y, model=model, target_input=X[1])
