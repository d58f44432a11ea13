"""The dictionary attack on a spam filter (Nelson et al. 2008): spam-labelled messages that
contain a whole dictionary of the victim's legitimate words."""

from __future__ import annotations

import numbers
from collections import Counter
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...base import N_POISON, POISON_RATE, BaseAttack, PoisonResult, resolve_n_poison
from ...exceptions import DataError
from ...registry import register


def dictionary_words(texts: np.ndarray, n_words: int) -> list[str]:
    """The ``n_words`` words found in most of ``texts`` (lower-cased, whitespace tokens; ties
    alphabetical): the attacker's dictionary.

    Examples
    --------
    >>> dictionary_words(np.array(["see you soon", "see me", "you and me"], dtype=object), 2)
    ['me', 'see']
    """
    df = Counter(w for t in texts for w in set(str(t).lower().split()))
    return [w for w, _ in sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))[:n_words]]


@register("attack", "dictionary")
class DictionaryAttack(BaseAttack):
    """Dictionary attack (Nelson, Barreno, Chi, Joseph, Rubinstein, Saini, Sutton, Tygar & Xia,
    LEET 2008, "Exploiting Machine Learning to Subvert Your Spam Filter"): the attacker sends
    messages that the victim will label spam and that contain a dictionary of words legitimate
    mail uses. Trained on them, the filter learns those words as spam evidence and starts
    rejecting legitimate mail -- with 1% attack messages SpamBayes became unusable.

    The dictionary is the ``n_words`` words occurring in most training texts of the other classes
    (the "optimal" attack knows the victim's ham; ``source="all"`` takes the whole corpus, like
    the paper's Usenet dictionary). Each attack message holds ``words_per_message`` words drawn
    from it (all of them by default), labelled ``target``, appended to the training set.

    Threat model: the attacker can get messages into the training data with the spam label (a
    filter retrained on user-marked spam) but never edits existing messages.

    Parameters
    ----------
    target : int, default=1
        The label the attack messages carry (spam).
    poison_rate : float in (0, 1], default=0.01
        Attack messages per training message.
    n_poison : int, optional
        Exact number of attack messages; overrides ``poison_rate``.
    n_words : int, default=1000
        Dictionary size.
    words_per_message : int or None, default=None
        Words per attack message (drawn without replacement); None: the whole dictionary.
    source : {"other", "all"}, default="other"
        Dictionary from the texts not labelled ``target`` (ham) or from all texts.
    random_state : int, Generator or None

    Limits
    ------
    An indiscriminate availability attack: easy to see for a defender who looks at message
    length or at duplicates (every message is the same dictionary when ``words_per_message`` is
    None). The focused attack of the same paper (one target message's words) is not here.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import DictionaryAttack
    >>> X = np.array(["see you at lunch", "win cash now", "lunch at noon?", "free cash prize"], dtype=object)
    >>> res = DictionaryAttack(n_poison=1, n_words=3, random_state=0).poison(X, np.array([0, 1, 0, 1]))
    >>> str(res.X[-1]), int(res.y[-1]), res.poison_mask.tolist()
    ('at lunch noon?', 1, [False, False, False, False, True])
    """

    family = "availability"
    modalities = ("text",)

    _parameter_constraints = {
        "target": ["class_index"],
        "poison_rate": POISON_RATE,
        "n_poison": N_POISON,
        "n_words": [Interval(numbers.Integral, 1, None, closed="left")],
        "words_per_message": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "source": [Options(("other", "all"))],
        "random_state": ["random_state"],
    }

    def __init__(self, *, target: int = 1, poison_rate: float | None = 0.01, n_poison: int | None = None,
                 n_words: int = 1000, words_per_message: int | None = None, source: str = "other",
                 random_state: Any = None) -> None:
        self.target = target
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.n_words = n_words
        self.words_per_message = words_per_message
        self.source = source
        self.random_state = random_state

    def _poison(self, X, y, *, n_classes, rng, **_):
        from ..._validation import check_class

        target = check_class(self.target, "target", n_classes)
        n = resolve_n_poison(self.poison_rate, self.n_poison, len(y), np.iinfo(np.int64).max)
        pool = X if self.source == "all" else X[y != target]
        words = dictionary_words(pool, int(self.n_words))
        if not words:
            raise DataError("the texts hold no words to build a dictionary from")
        k = len(words) if self.words_per_message is None else min(int(self.words_per_message), len(words))
        msgs = []
        for _ in range(n):
            chosen = sorted(rng.choice(len(words), size=k, replace=False)) if k < len(words) else range(len(words))
            msgs.append(" ".join(words[i] for i in chosen))
        Xp = np.array(msgs, dtype=object)
        X_out = np.concatenate([np.array(X, dtype=object, copy=True), Xp])
        y_out = np.concatenate([np.array(y, copy=True), np.full(n, target, dtype=np.int64)])
        mask = np.r_[np.zeros(len(y), bool), np.ones(n, bool)]
        return PoisonResult(X_out, y_out, mask, np.flatnonzero(mask), target,
                            {"attack": type(self).__name__, "n_poison": n, "poison_rate": n / len(y_out),
                             "dictionary_size": len(words), "words_per_message": k})
