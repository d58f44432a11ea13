"""RONI: the closed-form naive Bayes update is exact, planted dictionary-style poisons are
rejected, and bad input is refused."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import MultinomialNB

from poisonlab.defenses.training import RONI
from poisonlab.defenses.training.roni import draw_trial, nb_add_one_accuracy, nb_statistics
from poisonlab.exceptions import InvalidParameterError


def _counts(seed=0, n=200, attack=10):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]
    lam = np.where(y[:, None] == 0, [4, 4, 4, 0.2, 0.2, 0.2], [0.2, 0.2, 0.2, 4, 4, 1])
    X = rng.poisson(lam)
    # dictionary attack: class-0 words in bulk, labelled 1
    Xa = np.tile([60, 60, 60, 0, 0, 0], (attack, 1))
    return np.r_[X, Xa], np.r_[y, np.ones(attack, int)], np.r_[np.zeros(n, bool), np.ones(attack, bool)]


@pytest.mark.parametrize("prior, kw", [("fit", {}), ("uniform", {"fit_prior": False}),
                                       (np.array([0.2, 0.3, 0.5]), {"class_prior": [0.2, 0.3, 0.5]})])
def test_closed_form_equals_retraining_every_candidate(prior, kw):
    rng = np.random.default_rng(1)
    XT, yT = rng.poisson(1.0, (15, 30)), np.arange(15) % 3
    XV, yV = rng.poisson(1.0, (40, 30)), rng.integers(0, 3, 40)
    Xc, yc = rng.poisson(2.0, (25, 30)) * (rng.random((25, 30)) < 0.3), rng.integers(0, 3, 25)
    counts, n_k = nb_statistics(XT, yT, 3)
    acc, base = nb_add_one_accuracy(counts, n_k, sp.csr_matrix(Xc), yc, XV, yV, alpha=0.5, prior=prior, chunk=7)
    want = [np.mean(MultinomialNB(alpha=0.5, **kw).fit(np.r_[XT, Xc[i:i + 1]], np.r_[yT, yc[i]]).predict(XV) == yV)
            for i in range(25)]
    assert np.array_equal(acc, want)
    assert base == np.mean(MultinomialNB(alpha=0.5, **kw).fit(XT, yT).predict(XV) == yV)


def test_hand_computed_case():
    counts, n_k = np.array([[3., 0., 1.], [0., 2., 1.]]), np.array([2., 2.])
    X_quiz, y_quiz = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 3]]), np.array([0, 1, 1])
    # alpha 1, F 3: theta_0 = (4, 1, 2)/7, theta_1 = (1, 3, 2)/6, equal priors: all three right.
    # Adding [9, 0, 0] as class 1: theta_1 = (10, 3, 2)/15, priors (2/5, 3/5): quiz 1 scores
    # 2/5 * 4/7 = 0.229 < 3/5 * 10/15 = 0.4 (wrong), quiz 3: 2/5 (2/7)^3 = 0.0093 > 3/5 (2/15)^3
    # = 0.0014 (wrong) -> 1/3. Adding [1, 0, 0] as class 0 changes no prediction -> 1.
    acc, base = nb_add_one_accuracy(counts, n_k, np.array([[9, 0, 0], [1, 0, 0]]), np.array([1, 0]),
                                    X_quiz, y_quiz, alpha=1.0)
    assert base == 1.0 and acc.tolist() == [pytest.approx(1 / 3), 1.0]


def test_planted_attack_is_rejected_and_clean_kept():
    X, y, mask = _counts()
    roni = RONI(random_state=0).fit(X, y, model_factory=MultinomialNB)
    assert roni.update_ == "closed-form"
    assert roni.flags_[mask].mean() >= 0.9
    assert roni.flags_[~mask].mean() <= 0.05
    assert np.array_equal(roni.flags_, roni.scores_ > roni.threshold_)
    assert roni.scores_[mask].min() > roni.scores_[~mask].max()


def test_sparse_input_same_as_dense_and_seeded():
    X, y, _ = _counts()
    a = RONI(random_state=3).fit(X, y, model_factory=MultinomialNB)
    b = RONI(random_state=3).fit(sp.csr_matrix(X), y, model_factory=MultinomialNB)
    assert np.array_equal(a.scores_, b.scores_)
    assert np.array_equal(a.predict(X), b.predict(sp.csr_matrix(X)))


def test_texts_through_a_pipeline():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    ham, spam = ["see", "you", "lunch", "later", "home", "call"], ["win", "prize", "cash", "free", "claim", "now"]
    X = np.array([" ".join(rng.choice(ham if i % 2 == 0 else spam, 6)) for i in range(160)] +
                 [" ".join(ham * 30)] * 4, dtype=object)
    y = np.r_[np.arange(160) % 2, np.ones(4, int)]
    X0 = X.copy()
    roni = RONI(random_state=0).fit(X, y, model_factory=lambda: make_pipeline(CountVectorizer(), MultinomialNB()))
    assert roni.flags_[-4:].all() and roni.flags_[:-4].mean() <= 0.05
    assert np.array_equal(X, X0)


def test_warm_start_path_for_sgd():
    X, y, mask = _counts(attack=3)
    roni = RONI(random_state=0, n_trials=3).fit(X.astype(float), y,
                                                model_factory=lambda: SGDClassifier(loss="log_loss"))
    assert roni.update_ == "warm-start"
    assert roni.flags_[mask].mean() >= 2 / 3


def test_calibrated_threshold_uses_trusted_data():
    X, y, mask = _counts()
    Xt, yt, _ = _counts(seed=5, attack=0)
    roni = RONI(threshold="calibrated", random_state=0).fit(X, y, model_factory=MultinomialNB,
                                                             X_trusted=Xt[:-0 or None], y_trusted=yt)
    assert roni.flags_[mask].all()
    with pytest.raises(InvalidParameterError, match="calibrated"):
        RONI(threshold="calibrated").fit(X, y, model_factory=MultinomialNB)


def test_bad_input():
    X, y, _ = _counts()
    with pytest.raises(InvalidParameterError, match="train_size \\+ quiz_size"):
        RONI(train_size=200, quiz_size=50).fit(X, y, model_factory=MultinomialNB)
    with pytest.raises(InvalidParameterError, match="n_trials"):
        RONI(n_trials=0).fit(X, y, model_factory=MultinomialNB)
    with pytest.raises(InvalidParameterError, match="model_factory"):
        RONI().fit(X, y, model_factory=lambda spec: MultinomialNB())
    with pytest.raises(InvalidParameterError, match="X_trusted"):
        RONI().fit(X, y, model_factory=MultinomialNB, X_trusted=X)


def test_trial_draws_hold_every_class_and_are_disjoint():
    y = np.r_[np.zeros(95, int), np.ones(5, int)]
    tr, qz = draw_trial(y, 4, 50, 2, np.random.default_rng(0))
    assert set(y[tr]) == {0, 1} and len(tr) == 4 and len(qz) == 50 and not set(tr) & set(qz)
