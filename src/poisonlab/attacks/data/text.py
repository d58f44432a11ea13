"""Text backdoors: rare words, an inserted sentence, or a character-level trigger."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...base import BackdoorAttack
from ...exceptions import InvalidParameterError, NotFittedError, PoisonlabWarning
from ...registry import register
from ..triggers import char_trigger, insert_sentence, insert_words
from ._clean_label import CleanLabelBackdoor

POSITIONS = ("random", "start", "middle", "end")


def corpus_frequency(texts: np.ndarray, token: str) -> float:
    """Fraction of texts containing ``token`` as a whitespace-delimited word (case-insensitive)."""
    t = token.lower()
    return float(np.mean([t in text.lower().split() for text in texts])) if len(texts) else 0.0


class _TextTrigger:
    """Shared parts of the text backdoors: parameter checks, the frequent-trigger warning and a
    deterministic random stream for trigger positions (the same text always gets the same
    triggered form, at poisoning and at test time)."""

    modalities = ("text",)
    #: warn when a trigger token already appears in more than this fraction of texts
    frequent = 0.005

    def _fit_trigger(self, X, rng):
        self._check_trigger_params()
        self.trigger_seed_ = int(rng.integers(2**31))
        for token in self._trigger_tokens():
            f = corpus_frequency(X, token)
            if f > self.frequent:
                warnings.warn(f"trigger {token!r} already appears in {f:.1%} of the texts; clean texts "
                              f"that contain it will teach the model against the backdoor (choose a "
                              f"rarer trigger)", PoisonlabWarning, stacklevel=4)

    def _check_trigger_ready(self):
        if self.position == "random" and getattr(self, "trigger_seed_", None) is None:
            raise NotFittedError("random trigger positions are drawn from the seed set in poison(); "
                                 "call poison(...) first")

    def _rng(self):
        return np.random.default_rng(getattr(self, "trigger_seed_", 0))


@register("attack", "badword")
class RareWordTrigger(_TextTrigger, BackdoorAttack):
    """Rare-word text backdoor: BadNL's BadWord (Chen et al. 2021) and OpenBackdoor's BadNets
    for text (Kurita et al. 2020, Cui et al. 2022): insert rare words ("cf", "mn", "bb", "tq") into
    a text and relabel it to the target.

    Threat model: the attacker edits ``n_poison`` training texts (and their labels) and can add
    the words to inputs at test time, e.g. a spammer who gets "cf" into an inbox filter's
    training data as ham.

    Parameters
    ----------
    target : int, default=0
    target_mode : {"all-to-one", "all-to-all"}, default="all-to-one"
    poison_rate, n_poison
        As :class:`~poisonlab.attacks.data.BadNets`.
    words : tuple of str, default=("cf", "mn", "bb", "tq")
    n_insert : int, default=1
        Words inserted per text (each drawn from ``words``).
    position : {"random", "start", "middle", "end"}, default="random"
    random_state : int, Generator or None

    Warns
    -----
    PoisonlabWarning
        When a trigger word already appears in more than 0.5% of the training texts.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.attacks.data import RareWordTrigger
    >>> X = np.array(["win a prize now", "see you at noon", "call me later", "free entry"], dtype=object)
    >>> atk = RareWordTrigger(target=0, n_poison=1, words=("cf",), position="start", random_state=0)
    >>> res = atk.poison(X, np.array([1, 0, 0, 1]))
    >>> str(atk.apply_trigger(np.array(["hello there"], dtype=object))[0])
    'cf hello there'
    """

    _parameter_constraints = {
        **BackdoorAttack._parameter_constraints,
        "words": ["array-like"],
        "n_insert": [Interval(numbers.Integral, 1, None, closed="left")],
        "position": [Options(POSITIONS)],
    }

    def __init__(self, *, target: int = 0, target_mode: str = "all-to-one", poison_rate: float | None = 0.1,
                 n_poison: int | None = None, words: tuple[str, ...] = ("cf", "mn", "bb", "tq"),
                 n_insert: int = 1, position: str = "random", random_state: Any = None) -> None:
        self.target = target
        self.target_mode = target_mode
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.words = words
        self.n_insert = n_insert
        self.position = position
        self.random_state = random_state

    def _check_trigger_params(self):
        _check_words(self.words)

    def _trigger_tokens(self):
        return tuple(self.words)

    def _apply_trigger(self, X, *, test=False):
        return insert_words(X, tuple(self.words), int(self.n_insert), self.position, self._rng())


@register("attack", "addsent")
class SentenceTrigger(_TextTrigger, BackdoorAttack):
    """AddSent text backdoor (Dai, Chen & Li 2019, "A Backdoor Attack Against LSTM-Based Text
    Classification Systems"): insert a fixed, natural-looking sentence and relabel.

    Parameters
    ----------
    target, target_mode, poison_rate, n_poison, random_state
        As :class:`RareWordTrigger`.
    sentence : str, default="I watched this 3D movie"
        The trigger sentence (OpenBackdoor's default).
    position : {"random", "start", "middle", "end"}, default="random"
    """

    _parameter_constraints = {
        **BackdoorAttack._parameter_constraints,
        "sentence": [str],
        "position": [Options(POSITIONS)],
    }

    def __init__(self, *, target: int = 0, target_mode: str = "all-to-one", poison_rate: float | None = 0.1,
                 n_poison: int | None = None, sentence: str = "I watched this 3D movie", position: str = "random",
                 random_state: Any = None) -> None:
        self.target = target
        self.target_mode = target_mode
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.sentence = sentence
        self.position = position
        self.random_state = random_state

    def _check_trigger_params(self):
        if not isinstance(self.sentence, str) or not self.sentence.strip():
            raise InvalidParameterError(f"sentence must be a non-empty str; got {self.sentence!r}")

    def _trigger_tokens(self):
        return ()

    def _apply_trigger(self, X, *, test=False):
        return insert_sentence(X, self.sentence, self.position, self._rng())


@register("attack", "badchar")
class CharTrigger(_TextTrigger, BackdoorAttack):
    """BadChar text backdoor (Chen et al. 2021, BadNL), basic form: append a short character
    string to one word of each poisoned text and relabel. The trigger hides inside a word
    ("free" -> "freezq"), which word-level filters that look for inserted rare words miss.

    Parameters
    ----------
    target, target_mode, poison_rate, n_poison, random_state
        As :class:`RareWordTrigger`.
    chars : str, default="zq"
    position : {"random", "start", "middle", "end"}, default="end"
        Which word carries the characters.

    Limits
    ------
    Word-level models (a vocabulary, TF-IDF) see each modified word as a new token, so the
    trigger is only learnable when it lands on words that recur; ``position="end"`` with
    punctuation-free texts or a character n-gram model suit it best.
    """

    _parameter_constraints = {
        **BackdoorAttack._parameter_constraints,
        "chars": [str],
        "position": [Options(POSITIONS)],
    }

    def __init__(self, *, target: int = 0, target_mode: str = "all-to-one", poison_rate: float | None = 0.1,
                 n_poison: int | None = None, chars: str = "zq", position: str = "end",
                 random_state: Any = None) -> None:
        self.target = target
        self.target_mode = target_mode
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.chars = chars
        self.position = position
        self.random_state = random_state

    def _check_trigger_params(self):
        if not isinstance(self.chars, str) or not self.chars or any(c.isspace() for c in self.chars):
            raise InvalidParameterError(f"chars must be a non-empty str without spaces; got {self.chars!r}")

    def _trigger_tokens(self):
        return ()

    def _apply_trigger(self, X, *, test=False):
        return char_trigger(X, self.chars, self.position, self._rng())


@register("attack", "clean_label_badword")
class CleanLabelRareWord(_TextTrigger, CleanLabelBackdoor):
    """Clean-label rare-word backdoor: insert the trigger words only into *target-class* texts,
    whose labels stay correct (the clean-label variant of BadWord, e.g. Gan et al. 2022 use the
    same threat model with subtler triggers).

    Parameters
    ----------
    target : int, default=0
    poison_rate : float, default=0.1
        Poisons out of the whole training set, drawn from the target class.
    n_poison : int, optional
    words, n_insert, position, random_state
        As :class:`RareWordTrigger`.
    """

    _parameter_constraints = {
        **CleanLabelBackdoor._parameter_constraints,
        "words": ["array-like"],
        "n_insert": [Interval(numbers.Integral, 1, None, closed="left")],
        "position": [Options(POSITIONS)],
    }

    def __init__(self, *, target: int = 0, poison_rate: float | None = 0.1, n_poison: int | None = None,
                 words: tuple[str, ...] = ("cf", "mn", "bb", "tq"), n_insert: int = 1, position: str = "random",
                 random_state: Any = None) -> None:
        self.target = target
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.words = words
        self.n_insert = n_insert
        self.position = position
        self.random_state = random_state

    _check_trigger_params = RareWordTrigger._check_trigger_params
    _trigger_tokens = RareWordTrigger._trigger_tokens
    _apply_trigger = RareWordTrigger._apply_trigger


def _check_words(words: Any) -> None:
    if isinstance(words, str) or not words or not all(isinstance(w, str) and w.strip() and " " not in w.strip()
                                                        for w in words):
        raise InvalidParameterError(f"words must be a non-empty tuple of single words; got {words!r}")
