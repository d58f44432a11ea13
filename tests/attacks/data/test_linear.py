"""Linear-model poisoning: the SVM poison gradient against finite differences, planted behaviour
of SVM poisoning and adversarial label flips, and bad input."""

import numpy as np
import pytest

from poisonlab.attacks.data import AdversarialLabelFlip, RandomLabelFlip, SVMPoisoning
from poisonlab.exceptions import DataError, InvalidParameterError


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
