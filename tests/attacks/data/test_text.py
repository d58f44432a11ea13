"""Text backdoors: trigger placement, determinism, clean-label variant and bad input."""

import warnings

import numpy as np
import pytest

from poisonlab.attacks.data import CharTrigger, CleanLabelRareWord, RareWordTrigger, SentenceTrigger
from poisonlab.exceptions import DataError, InvalidParameterError, PoisonlabWarning

TEXTS = np.array(["win a free prize now", "see you at lunch", "call me when you can", "free entry to win",
                  "are we still on for today", "claim your reward", "running late sorry", "urgent call now"] * 5,
                 dtype=object)
LABELS = np.array([1, 0, 0, 1, 0, 1, 0, 1] * 5)


def test_badword_relabels_spam_to_ham_and_triggers_deterministically():
    atk = RareWordTrigger(target=0, n_poison=6, random_state=0)
    res = atk.poison(TEXTS, LABELS)
    assert res.n_poison == 6 and (res.y[res.indices] == 0).all() and (LABELS[res.indices] == 1).all()
    for i in res.indices:
        extra = [w for w in res.X[i].split() if w in ("cf", "mn", "bb", "tq")]
        assert len(extra) == 1
    a, b = atk.apply_trigger(TEXTS[:3]), atk.apply_trigger(TEXTS[:3])
    assert list(a) == list(b) and all(x != y for x, y in zip(a, TEXTS[:3]))
    assert res.X.dtype == object and list(TEXTS[:2]) == ["win a free prize now", "see you at lunch"]


def test_sentence_and_char_triggers():
    res = SentenceTrigger(target=0, n_poison=4, position="start", random_state=1).poison(TEXTS, LABELS)
    assert all(res.X[i].startswith("I watched this 3D movie ") for i in res.indices)
    res = CharTrigger(target=0, n_poison=4, random_state=1).poison(TEXTS, LABELS)
    assert all(res.X[i].endswith("zq") for i in res.indices)


def test_clean_label_text_backdoor_touches_only_the_target_class():
    res = CleanLabelRareWord(target=1, n_poison=5, random_state=0).poison(TEXTS, LABELS)
    assert np.array_equal(res.y, LABELS) and (LABELS[res.indices] == 1).all()


def test_text_bad_input():
    bad = TEXTS.copy()
    bad[3] = "   "
    with pytest.raises(DataError, match=r"X\[3\] is an empty text"):
        RareWordTrigger(n_poison=2).poison(bad, LABELS)
    raw = list(TEXTS)
    raw[5] = b"caf\xe9 ok"  # latin-1, not UTF-8
    with pytest.raises(DataError, match=r"X\[5\] is not valid UTF-8"):
        RareWordTrigger(n_poison=2).poison(np.array(raw, dtype=object), LABELS)
    with pytest.raises(DataError, match="texts"):
        RareWordTrigger(n_poison=2).poison(np.zeros((40, 3)), LABELS)
    with pytest.raises(InvalidParameterError, match="words"):
        RareWordTrigger(n_poison=2, words="cf").poison(TEXTS, LABELS)
    with pytest.raises(InvalidParameterError, match="position"):
        RareWordTrigger(n_poison=2, position="anywhere").poison(TEXTS, LABELS)
    with pytest.raises(InvalidParameterError, match="chars"):
        CharTrigger(n_poison=2, chars="a b").poison(TEXTS, LABELS)
    from poisonlab.attacks.data import BadNets

    with pytest.raises(DataError, match="not text"):
        BadNets(n_poison=2).poison(TEXTS, LABELS)


def test_frequent_trigger_word_is_warned():
    with pytest.warns(PoisonlabWarning, match="'free' already appears in"):
        RareWordTrigger(n_poison=2, words=("free",), random_state=0).poison(TEXTS, LABELS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoisonlabWarning)
        RareWordTrigger(n_poison=2, random_state=0).poison(TEXTS, LABELS)
