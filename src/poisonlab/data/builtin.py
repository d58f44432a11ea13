"""The built-in default: scikit-learn's digits, which needs no files."""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, Splits, make_ids, stratified_split


def load_digits(*, test_fraction: float = 0.25, split_seed: int = 0) -> Splits:
    """scikit-learn's 1797 8x8 digits as ``(N, 1, 8, 8)`` float32 in [0, 1] (pixel values / 16).

    A stratified split seeded by ``split_seed`` (no official split exists).
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    X = (bunch.images.astype(np.float32) / 16.0)[:, None]
    y = bunch.target.astype(np.int64)
    full = Dataset(X=X, y=y, classes=tuple(str(i) for i in range(10)), modality="image",
                   ids=make_ids("digits", "all", len(y)), name="digits",
                   metadata={"source": np.full(len(y), "sklearn.datasets.load_digits")})
    tr, te = stratified_split(y, test_fraction, split_seed)
    return Splits(full.subset(tr), full.subset(te))
