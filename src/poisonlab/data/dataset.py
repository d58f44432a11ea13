"""The ``Dataset`` container every loader returns and every command consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .._validation import check_labels
from ..exceptions import DataError

MODALITIES = ("image", "text", "tabular", "audio")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs, labels and what is known about each sample.

    Attributes
    ----------
    X : ndarray
        Images ``(N, C, H, W)`` float32 in [0, 1]; tabular ``(N, d)`` float; audio features
        ``(N, 1, n_mels, frames)`` (or raw waveforms ``(N, T)``); text a 1-D object array of str.
    y : ndarray of int64, shape (N,)
        Class indices into ``classes``.
    classes : tuple of str
        Class names; every class index ``0 .. len(classes) - 1`` is a valid label.
    modality : {"image", "text", "tabular", "audio"}
    ids : ndarray of str, shape (N,)
        Stable sample ids (unique), e.g. ``"mnist:train:00042"``; survive subsetting and poisoning.
    name : str
    metadata : mapping of str to ndarray (N,)
        Optional per-sample columns: ``source``, ``contributor``, ``timestamp``, ...
    feature_names : tuple of str, optional
        Tabular column names (after encoding).
    info : mapping
        Facts about the whole set: sample rate, which files, the encoder used, ...
    """

    X: Any
    y: np.ndarray
    classes: tuple[str, ...]
    modality: str
    ids: np.ndarray
    name: str = ""
    metadata: Mapping[str, np.ndarray] = field(default_factory=dict)
    feature_names: tuple[str, ...] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise DataError(f"modality must be one of {MODALITIES}; got {self.modality!r}")
        n = len(self.X)
        y = check_labels(self.y, n, n_classes=len(self.classes))
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        ids = np.asarray(self.ids).astype(str)
        if ids.shape != (n,):
            raise DataError(f"ids must have one entry per sample ({n}); got shape {ids.shape}")
        if len(np.unique(ids)) != n:
            raise DataError("ids must be unique")
        object.__setattr__(self, "ids", ids)
        meta = {}
        for key, col in dict(self.metadata).items():
            col = np.asarray(col)
            if len(col) != n:
                raise DataError(f"metadata column {key!r} has {len(col)} entries for {n} samples")
            meta[key] = col
        object.__setattr__(self, "metadata", MappingProxyType(meta))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> np.ndarray:
        """Samples per class, indexed by class (zeros for empty classes)."""
        return np.bincount(self.y, minlength=self.n_classes)

    def subset(self, index: Any) -> "Dataset":
        """The samples at ``index`` (indices or a boolean mask), with their ids and metadata."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise DataError(f"boolean index must have shape ({len(self)},); got {idx.shape}")
            idx = np.flatnonzero(idx)
        return replace(
            self,
            X=self.X[idx],
            y=self.y[idx],
            ids=self.ids[idx],
            metadata={k: v[idx] for k, v in self.metadata.items()},
        )

    def with_arrays(self, X: Any = None, y: Any = None, **metadata: np.ndarray) -> "Dataset":
        """A copy with new inputs and/or labels (same samples, same ids), plus metadata columns."""
        meta = dict(self.metadata)
        meta.update(metadata)
        return replace(self, X=self.X if X is None else X, y=self.y if y is None else y,
                       metadata=meta)

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description (no data)."""
        shape = list(np.shape(self.X)) if self.modality != "text" else [len(self)]
        return {"name": self.name, "modality": self.modality, "n_samples": len(self),
                "shape": shape, "classes": list(self.classes),
                "class_counts": self.class_counts().tolist()}


@dataclass(frozen=True, eq=False)
class Splits:
    """A dataset's official splits. ``encoder`` is set for tabular data (fitted on train only)."""

    train: Dataset
    test: Dataset
    encoder: Any = None

    def __iter__(self):
        yield self.train
        yield self.test


def make_ids(name: str, split: str, n: int) -> np.ndarray:
    """``name:split:00042`` style ids, zero-padded to sort."""
    width = len(str(max(n - 1, 0)))
    return np.array([f"{name}:{split}:{i:0{width}d}" for i in range(n)])


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/test indices (sorted)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
    return np.sort(tr), np.sort(te)
