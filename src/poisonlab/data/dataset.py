"""The ``Dataset`` container every loader returns and every command consumes."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .._validation import check_labels, check_random_state, check_scalar
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

    def split(self, *, by: str | Any = None, test_fraction: float = 0.2,
              random_state: Any = None) -> "Splits":
        """Split into a training and a test set, keeping whole groups on one side.

        Parameters
        ----------
        by : str or array-like of shape (N,), optional
            The groups: the name of a ``metadata`` column (``"contributor"``: FSDD's speaker, a
            crowd worker, a data vendor; ``"source"``) or one group label per sample. Every group
            lands wholly in train or wholly in test, so a test score measures generalisation to
            unseen speakers or contributors. None: a stratified split by class instead
            (:func:`stratified_split`; class proportions kept on both sides).
        test_fraction : float in (0, 1), default=0.2
            With ``by``: the fraction of *groups* in the test set, rounded up
            (``ceil(test_fraction * n_groups)``, as scikit-learn's ``GroupShuffleSplit``), so the
            fraction of samples follows the groups' sizes. Without ``by``: the fraction of
            samples.
        random_state : None, int or numpy Generator, default=None
            Which groups (or samples) go to test; the same int gives the same split.

        Returns
        -------
        Splits
            ``(train, test)``; each keeps its samples' ids and metadata, and ``info["split"]``
            says how it was made (with ``by``: the test groups).

        Raises
        ------
        DataError
            An unknown metadata column, group labels of the wrong length, fewer than 2 groups,
            a fraction that leaves a side without any group, or (without ``by``) a class too
            small to stratify.
        InvalidParameterError
            ``test_fraction`` outside (0, 1).

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset(X=np.zeros((6, 2)), y=[0, 1, 0, 1, 0, 1], classes=("a", "b"),
        ...              modality="tabular", ids=[f"s{i}" for i in range(6)],
        ...              metadata={"contributor": ["ann", "ann", "bob", "bob", "cy", "cy"]})
        >>> train, test = ds.split(by="contributor", test_fraction=0.3, random_state=0)
        >>> test.info["split"]["test_groups"], sorted(set(train.metadata["contributor"].tolist()))
        (['cy'], ['ann', 'bob'])
        """
        check_scalar(test_fraction, "test_fraction", numbers.Real, low=0.0, high=1.0,
                     low_inclusive=False, high_inclusive=False)
        rng = check_random_state(random_state)
        if by is None:
            seed = int(random_state) if isinstance(random_state, (numbers.Integral, np.integer)) \
                else int(rng.integers(0, 2**32 - 1))
            try:
                tr, te = stratified_split(self.y, test_fraction, seed)
            except ValueError as exc:
                raise DataError(f"cannot split {self.name or 'the dataset'} stratified by class with "
                                f"test_fraction={test_fraction}: {str(exc).splitlines()[0]}") from exc
            how: dict[str, Any] = {"by": None, "test_fraction": float(test_fraction)}
            return Splits(self._split_part(tr, "train", how), self._split_part(te, "test", how))
        if isinstance(by, str):
            if by not in self.metadata:
                raise DataError(f"unknown metadata column {by!r}; available: {sorted(self.metadata)}")
            groups, label = self.metadata[by], by
        else:
            groups, label = np.asarray(by), "<array>"
            if groups.ndim != 1 or len(groups) != len(self):
                raise DataError(f"by must give one group label per sample ({len(self)}); got shape {groups.shape}")
        try:
            names, inverse = np.unique(groups, return_inverse=True)
        except TypeError as exc:
            raise DataError(f"group labels of {label!r} cannot be compared (mixed types?): {exc}") from exc
        if len(names) < 2:
            raise DataError(f"a group split needs at least 2 groups; {label!r} has {len(names)}")
        n_test = int(np.ceil(test_fraction * len(names)))
        if n_test >= len(names):
            raise DataError(f"test_fraction={test_fraction} of {len(names)} groups puts every group "
                            f"of {label!r} in the test set; lower it")
        test_groups = np.sort(rng.permutation(len(names))[:n_test])
        in_test = np.isin(inverse, test_groups)
        how = {"by": label, "test_fraction": float(test_fraction),
               "test_groups": np.asarray(names[test_groups]).tolist()}
        return Splits(self._split_part(np.flatnonzero(~in_test), "train", how),
                      self._split_part(np.flatnonzero(in_test), "test", how))

    def _split_part(self, index: np.ndarray, side: str, how: dict[str, Any]) -> "Dataset":
        part = self.subset(index)
        return replace(part, info={**self.info, "split": {**how, "side": side}})

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
    try:
        tr, te = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
    except ValueError as exc:  # too few samples, or a class with a single one
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot split {len(y)} samples into train and test by class "
                        f"(test_fraction={test_fraction}): {reason}") from exc
    return np.sort(tr), np.sort(te)
