"""Text datasets: SMS Spam Collection, SST-2, and users' own TSV files or folders of texts."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..exceptions import DataError
from . import checksums
from .dataset import Dataset, Splits, make_ids, stratified_split
from .paths import find_dir, require_file


def decode_utf8(raw: bytes, source: str) -> str:
    """Decode UTF-8, naming the line of the first invalid byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{source} is not valid UTF-8 (line {line}, byte {exc.start})") from exc


def _text_dataset(name, split, texts, labels, classes, source) -> Dataset:
    texts = np.array(texts, dtype=object)
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise DataError(f"{source}: {len(empty)} empty text(s), first at record {empty[0]}")
    return Dataset(X=texts, y=np.asarray(labels, dtype=np.int64), classes=classes, modality="text",
                   ids=make_ids(name, split, len(texts)), name=name,
                   metadata={"source": np.full(len(texts), source)})


def load_sms_spam(root=None, *, verify: bool = True, test_fraction: float = 0.2,
                  split_seed: int = 0) -> Splits:
    """SMS Spam Collection v.1 (Almeida et al. 2011): 4827 ham, 747 spam; classes ("ham", "spam").

    Reads ``SMSSpamCollection`` (TSV: label, tab, message) or ``smsspamcollection.zip``. The
    collection has no official split: a stratified ``test_fraction`` split seeded by
    ``split_seed`` is made (ids keep the original line numbers).
    """
    folder = find_dir(root, "sms-spam-collection", "sms-spam", "smsspamcollection")
    path = require_file(folder, "SMSSpamCollection", "SMSSpamCollection.txt", "smsspamcollection.zip")
    if verify:
        checksums.verify(path, "sms-spam")
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                raw = zf.read("SMSSpamCollection")
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise DataError(f"{path} is not a readable SMS Spam zip: {exc}") from exc
    else:
        raw = path.read_bytes()
    text = decode_utf8(raw, str(path))
    texts, labels = [], []
    classes = ("ham", "spam")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        label, sep, msg = line.partition("\t")
        if not sep or label not in classes:
            raise DataError(f"{path} line {lineno}: expected 'ham<TAB>text' or 'spam<TAB>text'")
        texts.append(msg)
        labels.append(classes.index(label))
    full = _text_dataset("sms-spam", "all", texts, labels, classes, path.name)
    tr, te = stratified_split(full.y, test_fraction, split_seed)
    return Splits(full.subset(tr), full.subset(te))


def read_text_tsv(path: str | os.PathLike, *, text_column: str = "sentence", label_column: str = "label",
                  classes: tuple[str, ...] | None = None, name: str | None = None,
                  split: str = "all") -> Dataset:
    """A TSV file with a header, a text column and a label column (SST-2's format).

    Labels are class names or integers; with ``classes`` given, integer labels index into it and
    names must belong to it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(decode_utf8(raw, str(path)), newline=""), delimiter="\t",
                            quoting=csv.QUOTE_NONE)
    texts, raw_labels = [], []
    try:
        if reader.fieldnames is None or text_column not in reader.fieldnames or label_column not in reader.fieldnames:
            raise DataError(f"{path} needs a header with columns {text_column!r} and {label_column!r}; "
                            f"got {reader.fieldnames}")
        for row in reader:
            texts.append((row[text_column] or "").strip())
            raw_labels.append((row[label_column] or "").strip())
    except csv.Error as exc:
        raise DataError(f"{path} is not a valid TSV file (line {reader.line_num}): {exc}") from exc
    if classes is None:
        classes = tuple(sorted(set(raw_labels), key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)))
    labels = []
    for i, lab in enumerate(raw_labels):
        if lab in classes:
            labels.append(classes.index(lab))
        elif lab.isdigit() and int(lab) < len(classes):
            labels.append(int(lab))
        else:
            raise DataError(f"{path} record {i + 1}: label {lab!r} is not one of {classes}")
    return _text_dataset(name or path.stem, split, texts, labels, classes, path.name)


def load_sst2(root=None, *, verify: bool = True) -> Splits:
    """SST-2 (GLUE): train 67,349 / dev 872 labelled sentences; classes ("negative", "positive").

    GLUE's test split is unlabelled, so ``dev.tsv`` is the test split here.
    """
    folder = find_dir(root, "sst2/SST-2", "SST-2", "sst2")
    out = []
    for split, fname in (("train", "train.tsv"), ("test", "dev.tsv")):
        path = require_file(folder, fname)
        if verify:
            checksums.verify(path, "sst2")
        ds = read_text_tsv(path, classes=("negative", "positive"), name="sst2", split=split)
        out.append(ds)
    return Splits(*out)


def read_text_folder(path: str | os.PathLike, *, name: str | None = None) -> Dataset:
    """A folder with one sub-folder per class, each holding ``.txt`` files (one text each)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a folder")
    classes = tuple(sorted(p.name for p in path.iterdir() if p.is_dir()))
    if len(classes) < 2:
        raise DataError(f"{path} must hold at least two class sub-folders; found {list(classes)}")
    texts, labels, ids = [], [], []
    for ci, cname in enumerate(classes):
        files = sorted((path / cname).glob("*.txt"))
        if not files:
            raise DataError(f"class folder {path / cname} holds no .txt files (empty class)")
        for f in files:
            texts.append(decode_utf8(f.read_bytes(), str(f)).strip())
            labels.append(ci)
            ids.append(f"{cname}/{f.name}")
    ds = _text_dataset(name or path.name, "all", texts, labels, classes, path.name)
    return replace(ds, ids=np.array(ids))
