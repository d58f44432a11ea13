"""Tabular datasets: UCI Adult, Statlog German Credit, and users' CSV files.

Mixed columns are turned into numbers by a :class:`TabularEncoder` fitted on the training split
only and kept (``Splits.encoder``) to transform test data and new rows the same way.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._validation import check_is_fitted
from ..exceptions import DataError
from . import checksums
from .dataset import Dataset, Splits, make_ids
from .paths import find_dir, require_file
from .dataset import stratified_split
from .text import decode_utf8

ADULT_COLUMNS = ("age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
                 "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
                 "hours-per-week", "native-country")
ADULT_NUMERIC = {"age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"}

GERMAN_COLUMNS = ("checking_status", "duration", "credit_history", "purpose", "credit_amount",
                  "savings", "employment", "installment_rate", "personal_status", "other_parties",
                  "residence_since", "property", "age", "other_installment_plans", "housing",
                  "existing_credits", "job", "num_dependents", "telephone", "foreign_worker")
GERMAN_NUMERIC = {"duration", "credit_amount", "installment_rate", "residence_since", "age",
                  "existing_credits", "num_dependents"}


class TabularEncoder:
    """Standardise numeric columns and one-hot encode categorical ones; fitted once, reused.

    Missing values (``""`` or ``"?"``) become their own category for categorical columns and the
    training median for numeric ones. A category unseen in training maps to all zeros (recorded
    in ``unknown_counts_`` of the last ``transform``), never to an error, because test data of real
    tables has rare categories missing from train (Adult's "Holand-Netherlands").

    Parameters
    ----------
    columns : sequence of str
    numeric : set of str
        Which columns are numeric; the rest are categorical.
    """

    MISSING = ("", "?")

    def __init__(self, *, columns: Sequence[str], numeric: set[str]) -> None:
        self.columns = tuple(columns)
        self.numeric = set(numeric)

    def fit(self, rows: np.ndarray) -> "TabularEncoder":
        rows = self._check(rows)
        self.medians_, self.means_, self.stds_, self.categories_ = {}, {}, {}, {}
        for j, col in enumerate(self.columns):
            if col in self.numeric:
                vals = self._numeric(rows[:, j], col, fill=None)
                med = float(np.nanmedian(vals))
                vals = np.where(np.isnan(vals), med, vals)
                self.medians_[col], self.means_[col] = med, float(vals.mean())
                self.stds_[col] = float(vals.std()) or 1.0
            else:
                self.categories_[col] = tuple(sorted(set(rows[:, j].tolist())))
        names = []
        for col in self.columns:
            names += [col] if col in self.numeric else [f"{col}={c}" for c in self.categories_[col]]
        self.feature_names_ = tuple(names)
        return self

    def transform(self, rows: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "feature_names_")
        rows = self._check(rows)
        blocks, unknown = [], {}
        for j, col in enumerate(self.columns):
            if col in self.numeric:
                vals = self._numeric(rows[:, j], col, fill=self.medians_[col])
                blocks.append(((vals - self.means_[col]) / self.stds_[col])[:, None])
            else:
                cats = self.categories_[col]
                lookup = {c: i for i, c in enumerate(cats)}
                codes = np.array([lookup.get(v, -1) for v in rows[:, j]])
                onehot = np.zeros((len(rows), len(cats)), dtype=np.float64)
                known = codes >= 0
                onehot[np.flatnonzero(known), codes[known]] = 1.0
                if (~known).any():
                    unknown[col] = int((~known).sum())
                blocks.append(onehot)
        self.unknown_counts_ = unknown
        return np.hstack(blocks).astype(np.float32)

    def fit_transform(self, rows: np.ndarray) -> np.ndarray:
        return self.fit(rows).transform(rows)

    def _check(self, rows: Any) -> np.ndarray:
        rows = np.asarray(rows, dtype=object)
        if rows.ndim != 2 or rows.shape[1] != len(self.columns):
            raise DataError(f"rows must have shape (n, {len(self.columns)}) for columns "
                            f"{self.columns}; got {rows.shape}")
        return np.vectorize(lambda v: str(v).strip(), otypes=[object])(rows)

    def _numeric(self, col: np.ndarray, name: str, fill: float | None) -> np.ndarray:
        out = np.empty(len(col))
        for i, v in enumerate(col):
            if v in self.MISSING:
                out[i] = np.nan if fill is None else fill
                continue
            try:
                out[i] = float(v)
            except ValueError as exc:
                raise DataError(f"column {name!r} row {i}: {v!r} is not a number") from exc
        if not np.isfinite(out[~np.isnan(out)]).all():
            raise DataError(f"column {name!r} holds an infinite value")
        return out


def _read_delimited(path: Path, delimiter: str | None, n_fields: int) -> list[list[str]]:
    text = decode_utf8(path.read_bytes(), str(path))
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("|"):  # adult.test opens with a "|1x3 Cross validator" line
            continue
        fields = [f.strip() for f in (line.split(delimiter) if delimiter else line.split())]
        if len(fields) != n_fields:
            raise DataError(f"{path} line {lineno}: expected {n_fields} fields, got {len(fields)}")
        rows.append(fields)
    return rows


def _tabular_splits(name, rows_tr, y_tr, rows_te, y_te, columns, numeric, classes, sources) -> Splits:
    enc = TabularEncoder(columns=columns, numeric=numeric).fit(rows_tr)
    out = []
    for split, rows, y, src in (("train", rows_tr, y_tr, sources[0]), ("test", rows_te, y_te, sources[1])):
        X = enc.transform(rows)
        out.append(Dataset(X=X, y=y, classes=classes, modality="tabular",
                           ids=make_ids(name, split, len(y)), name=name,
                           metadata={"source": np.full(len(y), src)},
                           feature_names=enc.feature_names_,
                           info={"raw_columns": columns, "raw": rows}))
    return Splits(out[0], out[1], encoder=enc)


def load_adult(root=None, *, verify: bool = True) -> Splits:
    """UCI Adult (census income): 32,561 train / 16,281 test rows, 14 mixed features.

    Classes ``("<=50K", ">50K")``. ``info["raw"]`` keeps the raw string rows (for subgroup
    attributes such as ``sex`` and ``race``); ``Splits.encoder`` transforms new rows.
    """
    folder = find_dir(root, "adult")
    classes = ("<=50K", ">50K")
    parts = []
    for fname in ("adult.data", "adult.test"):
        path = require_file(folder, fname)
        if verify:
            checksums.verify(path, "adult")
        rows = np.array(_read_delimited(path, ",", 15), dtype=object)
        labels = np.array([classes.index(v.rstrip(".")) if v.rstrip(".") in classes else -1
                           for v in rows[:, -1]])
        if (labels < 0).any():
            bad = rows[np.argmax(labels < 0), -1]
            raise DataError(f"{path}: label {bad!r} is not one of {classes}")
        parts.append((rows[:, :-1], labels))
    return _tabular_splits("adult", parts[0][0], parts[0][1], parts[1][0], parts[1][1],
                           ADULT_COLUMNS, ADULT_NUMERIC, classes, ("adult.data", "adult.test"))


def load_german_credit(root=None, *, verify: bool = True, test_fraction: float = 0.3,
                       split_seed: int = 0) -> Splits:
    """Statlog German Credit: 1000 rows, 20 features (13 categorical); classes ("good", "bad").

    No official split: a stratified ``test_fraction`` split seeded by ``split_seed``.
    """
    folder = find_dir(root, "german-credit", "german")
    path = require_file(folder, "german.data")
    if verify:
        checksums.verify(path, "german-credit")
    rows = np.array(_read_delimited(path, None, 21), dtype=object)
    if not set(rows[:, -1]) <= {"1", "2"}:
        raise DataError(f"{path}: the class column must be 1 (good) or 2 (bad)")
    y = rows[:, -1].astype(int) - 1
    tr, te = stratified_split(y, test_fraction, split_seed)
    return _tabular_splits("german-credit", rows[tr, :-1], y[tr], rows[te, :-1], y[te],
                           GERMAN_COLUMNS, GERMAN_NUMERIC, ("good", "bad"),
                           ("german.data", "german.data"))


def read_csv(path: str | os.PathLike, *, label_column: str, numeric: Sequence[str] | None = None,
             test_fraction: float = 0.2, split_seed: int = 0) -> Splits:
    """A user's CSV with a header. Columns in ``numeric`` (default: every column whose values
    all parse as numbers) are standardised, the rest one-hot encoded; the label column's
    distinct values become the classes."""
    path = Path(path)
    try:
        text = decode_utf8(path.read_bytes(), str(path))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header or label_column not in header:
            raise DataError(f"{path} needs a header row with the label column {label_column!r}; got {header}")
        body = [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise DataError(f"{path} is not a valid CSV file (line {reader.line_num}): {exc}") from exc
    if any(len(r) != len(header) for r in body):
        bad = next(i for i, r in enumerate(body) if len(r) != len(header))
        raise DataError(f"{path} row {bad + 2} has {len(body[bad])} fields, header has {len(header)}")
    if not body:
        raise DataError(f"{path} has no data rows")
    rows = np.array(body, dtype=object)
    li = header.index(label_column)
    classes = tuple(sorted(set(rows[:, li].tolist())))
    if len(classes) < 2:
        raise DataError(f"{path}: the label column {label_column!r} holds fewer than 2 classes")
    y = np.array([classes.index(v) for v in rows[:, li]])
    cols = [c for c in header if c != label_column]
    feats = np.delete(rows, li, axis=1)
    if numeric is None:
        numeric = [c for j, c in enumerate(cols) if _all_numeric(feats[:, j])]
    tr, te = stratified_split(y, test_fraction, split_seed)
    return _tabular_splits(path.stem, feats[tr], y[tr], feats[te], y[te], tuple(cols),
                           set(numeric), classes, (path.name, path.name))


def _all_numeric(col: np.ndarray) -> bool:
    try:
        [float(v) for v in col if str(v).strip() not in TabularEncoder.MISSING]
    except ValueError:
        return False
    return True
