"""Text to token ids: a vocabulary built from the training texts only."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from .._validation import check_is_fitted
from ..exceptions import DataError

_TOKEN = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _TOKEN.findall(text.lower())


class Vocabulary:
    """Maps tokens to ids: 0 = padding, 1 = unknown, 2.. = tokens seen at least ``min_count``
    times in the training texts (most frequent first, ties alphabetical, so the same texts give
    the same ids).

    Parameters
    ----------
    max_size : int, default=20000
    min_count : int, default=1
    max_length : int, default=64
        Texts are truncated to this many tokens and padded with 0.
    """

    PAD, UNK = 0, 1

    def __init__(self, *, max_size: int = 20000, min_count: int = 1, max_length: int = 64) -> None:
        self.max_size = max_size
        self.min_count = min_count
        self.max_length = max_length

    def fit(self, texts: Any) -> "Vocabulary":
        texts = _check_texts(texts)
        counts = Counter(tok for t in texts for tok in tokenize(t))
        kept = sorted((t for t, c in counts.items() if c >= self.min_count), key=lambda t: (-counts[t], t))
        self.tokens_ = tuple(kept[: self.max_size - 2])
        self.index_ = {t: i + 2 for i, t in enumerate(self.tokens_)}
        return self

    @property
    def vocab_size(self) -> int:
        check_is_fitted(self, "tokens_")
        return len(self.tokens_) + 2

    def to_dict(self) -> dict[str, Any]:
        """The fitted vocabulary as JSON-serialisable data (parameters and tokens in id order,
        from id 2), what a model card stores.

        Examples
        --------
        >>> v = Vocabulary(max_length=4).fit(["a b b", "c"])
        >>> v.to_dict()
        {'max_size': 20000, 'min_count': 1, 'max_length': 4, 'tokens': ['b', 'a', 'c']}
        >>> Vocabulary.from_dict(v.to_dict()).transform(["b c d"]).tolist()
        [[2, 4, 1, 0]]
        """
        check_is_fitted(self, "tokens_")
        return {"max_size": self.max_size, "min_count": self.min_count,
                "max_length": self.max_length, "tokens": list(self.tokens_)}

    @classmethod
    def from_dict(cls, data: Any) -> "Vocabulary":
        """A fitted vocabulary from :meth:`to_dict`'s output (DataError if it is malformed)."""
        keys = ("max_size", "min_count", "max_length", "tokens")
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise DataError(f"a vocabulary must be an object with {', '.join(keys)}")
        tokens = data["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError("vocabulary tokens must be a list of str")
        if len(set(tokens)) != len(tokens):
            raise DataError("vocabulary tokens must be unique")
        for k in keys[:3]:
            if not isinstance(data[k], int) or isinstance(data[k], bool) or data[k] < 1:
                raise DataError(f"vocabulary {k} must be a positive int; got {data[k]!r}")
        vocab = cls(max_size=data["max_size"], min_count=data["min_count"], max_length=data["max_length"])
        vocab.tokens_ = tuple(tokens)
        vocab.index_ = {t: i + 2 for i, t in enumerate(vocab.tokens_)}
        return vocab

    def transform(self, texts: Any) -> np.ndarray:
        """``(N, max_length)`` int64 ids."""
        check_is_fitted(self, "tokens_")
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.max_length), dtype=np.int64)
        for i, t in enumerate(texts):
            ids = [self.index_.get(tok, self.UNK) for tok in tokenize(t)[: self.max_length]]
            if not ids:
                ids = [self.UNK]
            out[i, : len(ids)] = ids
        return out


def _check_texts(texts: Any) -> np.ndarray:
    arr = np.asarray(texts, dtype=object)
    if arr.ndim != 1:
        raise DataError(f"texts must be a 1-D sequence of str; got shape {arr.shape}")
    bad = [i for i, t in enumerate(arr) if not isinstance(t, str)]
    if bad:
        raise DataError(f"texts must all be str; item {bad[0]} is {type(arr[bad[0]]).__name__}")
    return arr
