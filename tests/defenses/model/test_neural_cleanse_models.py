"""Neural Cleanse with its defaults on the demo's digits models: a clean model is not flagged,
a BadNets model is flagged at its target, and every kept trigger really reaches the threshold.

The clean model is seed 5 of the demo's settings (cnn, 30 epochs, lr 3e-3, batch 64): the
implementation before the fix flagged its class 9 (anomaly index 2.50 after 20 epochs, 2.54 with
early stopping) because it kept masks whose measured attack success was 0.967-0.993, not 0.99.
"""

import warnings

import numpy as np
import pytest
import torch

from poisonlab.attacks.data import BadNets
from poisonlab.data import load_digits
from poisonlab.defenses.model import NeuralCleanse
from poisonlab.exceptions import PoisonlabWarning
from poisonlab.models import TorchClassifier, TrainConfig
from poisonlab.models.architectures import model_factory


def _demo_model(X, y, seed):
    return TorchClassifier(model_factory("cnn", "image"),
                           config=TrainConfig(epochs=30, lr=3e-3, batch_size=64, seed=seed)).fit(X, y)


def _fit_defaults(X, clf, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoisonlabWarning)  # a conclusive run raises no warning
        return NeuralCleanse(random_state=seed).fit(X, model=clf)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _measured_success(nc, clf, X):
    with torch.no_grad():
        return np.array([(clf.module_(torch.as_tensor(nc.apply_reversed_trigger(X, t))).argmax(1) == t)
                         .float().mean().item() for t in range(len(nc.l1_norms_))])


def test_clean_digits_model_is_not_flagged_with_the_defaults(digits):
    clf = _demo_model(digits.train.X, digits.train.y, seed=5)
    X = digits.test.X[:500]  # all 450: scan-model's n_clean 500 capped by the split
    nc = _fit_defaults(X, clf, seed=0)
    assert nc.conclusive_ and nc.converged_.all() and nc.reached_threshold_.all()
    assert nc.threshold_ == 2.0 and not nc.flags_.any(), nc.scores_.round(2)
    assert nc.scores_.max() < 2.0
    # the paper's index alone sits at the threshold for class 9 (1.86 on the recording machine,
    # 2.0013 on another CPU): its mask is barely smaller than the next class's, and the gap test
    # (docs/neural_cleanse.md) is what keeps it unflagged on every CPU
    assert nc.anomaly_index_.argmax() == 9 and nc.gap_[9] < 1.3
    # every kept mask was checked on all clean inputs: it really sends >= 99% of them to its class
    assert (nc.success_rates_ >= 0.99).all()
    assert _measured_success(nc, clf, X) == pytest.approx(nc.success_rates_, abs=1e-6)
    assert (nc.epochs_run_ < nc.epochs).all()  # stopped by convergence, not by the cap


def test_badnets_digits_model_is_flagged_at_its_target(digits):
    # the demo's attack: BadNets on 10% of the training set, target 0, 3x3 bottom-right square
    atk = BadNets(target=0, poison_rate=0.1, random_state=0)
    p = atk.poison(digits.train.X, digits.train.y)
    clf = _demo_model(p.X, p.y, seed=0)
    nc = _fit_defaults(digits.test.X[:500], clf, seed=0)
    assert nc.conclusive_
    assert np.flatnonzero(nc.flags_).tolist() == [0], nc.scores_.round(2)
    assert nc.l1_norms_.argmin() == 0 and nc.scores_[0] > 2.0
    mask, _ = nc.reversed_trigger(0)
    assert mask[-3:, -3:].mean() > 2 * mask.mean()  # the reversed mask sits where the patch was
