"""The dictionary attack: the dictionary is the ham vocabulary, appended spam-labelled messages."""

import numpy as np

from poisonlab.attacks.data import DictionaryAttack
from poisonlab.attacks.data.dictionary import dictionary_words


def test_dictionary_words_by_document_frequency():
    texts = np.array(["see you soon", "see me", "you and me", "see"], dtype=object)
    assert dictionary_words(texts, 2) == ["see", "me"]


def test_appends_spam_with_ham_words_only():
    X = np.array(["see you at lunch", "win cash now", "lunch at noon", "free cash prize"], dtype=object)
    y = np.array([0, 1, 0, 1])
    res = DictionaryAttack(n_poison=3, n_words=4, words_per_message=2, random_state=0).poison(X, y)
    assert res.poison_mask.tolist() == [False] * 4 + [True] * 3 and (res.y[4:] == 1).all()
    ham = {"see", "you", "at", "lunch", "noon"}
    assert all(set(m.split()) <= ham and len(m.split()) == 2 for m in res.X[4:])
    assert np.array_equal(res.X[:4], X)
