"""CIFAR-10 in its two official formats: binary batches and python (pickled) batches.

Python batches are pickles. They are checked against the published MD5 first and then read
with a restricted unpickler that can only build dicts, lists, bytes and numpy arrays, so a
tampered batch cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..exceptions import DataError, InvalidParameterError
from . import checksums
from .dataset import Dataset, Splits
from .paths import find_dir

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_RECORD = 1 + 3 * 32 * 32


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise DataError(f"{path} has {raw.size} bytes, not a whole number of {_RECORD}-byte CIFAR "
                        f"records: truncated or not a CIFAR-10 binary batch")
    rec = raw.reshape(-1, _RECORD)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{path} holds label {labels.max()}; CIFAR-10 labels are 0..9")
    return rec[:, 1:].reshape(-1, 3, 32, 32), labels


class _SafeUnpickler(pickle.Unpickler):
    """Builds only numpy arrays and plain containers; any other global is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a data batch")


def read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A python batch: a pickled dict with ``data`` (N x 3072 uint8) and ``labels``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - damaged pickles raise anything (OverflowError, IndexError, ...)
        raise DataError(f"{path} is not a valid CIFAR-10 python batch: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        raise DataError(f"{path} is not a CIFAR-10 python batch (no data/labels)")
    try:
        data = np.asarray(obj[b"data"], dtype=np.uint8)
        labels = np.asarray(obj[b"labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"{path}: data/labels are not arrays of bytes and integers: {exc}") from exc
    if labels.ndim != 1 or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise DataError(f"{path}: labels must be a list of classes 0..9")
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path}: data shape {data.shape} / {len(labels)} labels is not CIFAR-10")
    return data.reshape(-1, 3, 32, 32), labels


#: The batches of a full copy, in their canonical order.
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
#: The partial copy's test file: the first 1000 images of ``test_batch`` (binary format only).
TEST_FIRST1000 = "test_batch_first1000"


def _batch_name(item: Any, param: str) -> str:
    """``1`` -> ``data_batch_1``, ``"test"`` -> ``test_batch``; file stems (``.bin`` optional)
    pass through; anything else is a one-line error naming ``param``."""
    if isinstance(item, (int, np.integer)) and not isinstance(item, bool) and 1 <= item <= 5:
        return f"data_batch_{int(item)}"
    if isinstance(item, str):
        name = item.removesuffix(".bin")
        if name == "test":
            return TEST_BATCH
        if name in (*TRAIN_BATCHES, TEST_BATCH, TEST_FIRST1000):
            return name
    raise InvalidParameterError(f"{param}: unknown CIFAR-10 batch {item!r}; name one of 1-5, 'test', "
                                f"'data_batch_N', 'test_batch' or '{TEST_FIRST1000}'")


def _selection(value: Any, param: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, int, np.integer)):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise InvalidParameterError(f"{param} must be a sequence of batch names; got {value!r}") from None
    names = tuple(_batch_name(v, param) for v in items)
    if not names:
        raise InvalidParameterError(f"{param} must name at least one batch; got an empty sequence")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidParameterError(f"{param} names batch {dupes[0]!r} twice")
    return names


def _batch_file(folder: Path, name: str, binary: bool) -> Path | None:
    suffix = ".bin" if binary else ""
    if name == TEST_FIRST1000:
        if not binary:
            return None
        return next((p for p in (folder / f"{name}.bin", folder.parent / f"{name}.bin") if p.is_file()), None)
    path = folder / f"{name}{suffix}"
    return path if path.is_file() else None


def _resolve(folder: Path, binary: bool, train: tuple[str, ...] | None,
             test: tuple[str, ...] | None) -> tuple[list[Path], list[Path]]:
    """The files of the requested batches, in the requested order; defaults as documented."""
    if train is not None and test is not None:
        both = [n for n in train if n in test]
        if both:
            raise InvalidParameterError(f"batch {both[0]!r} is in both train_batches and test_batches")
    if test is None:
        default = _batch_file(folder, TEST_BATCH, binary) or _batch_file(folder, TEST_FIRST1000, binary)
        if default is None:
            raise DataError(f"{folder} lacks a CIFAR-10 test batch ({TEST_BATCH})")
        test_files = [default]
        test = (default.name.removesuffix(".bin"),)
    else:
        test_files = [_require(folder, n, binary, "test_batches") for n in test]
    if train is None:
        train_files = [p for n in TRAIN_BATCHES if n not in test
                       for p in [_batch_file(folder, n, binary)] if p is not None]
        if not train_files:
            raise DataError(f"{folder} lacks CIFAR-10 training batches (data_batch_1 .. data_batch_5)")
    else:
        train_files = [_require(folder, n, binary, "train_batches") for n in train]
    return train_files, test_files


def _require(folder: Path, name: str, binary: bool, param: str) -> Path:
    path = _batch_file(folder, name, binary)
    if path is None:
        kind = "binary" if binary else "python"
        raise DataError(f"CIFAR-10 batch {name!r} ({param}) is not in {folder} ({kind} format)")
    return path


def _sample_ids(path: Path, n: int) -> np.ndarray:
    """``cifar10:<batch>:<index>``: the same image has the same id whichever split it is in (the
    partial copy's first 1000 test images share ``test_batch``'s ids)."""
    batch = path.name.removesuffix(".bin")
    batch = TEST_BATCH if batch == TEST_FIRST1000 else batch
    return np.array([f"cifar10:{batch}:{i:05d}" for i in range(n)])


def load_cifar10(root=None, *, train_batches: Sequence[int | str] | None = None,
                 test_batches: Sequence[int | str] | None = None, verify: bool = True) -> Splits:
    """CIFAR-10 as ``(N, 3, 32, 32)`` float32 in [0, 1], with the batches chosen by name.

    Accepts a full copy in either format (``cifar-10-batches-bin`` or ``cifar-10-batches-py``) or
    the partial copy of ``shared/datasets/cifar10`` (batches 1-2 and the first 1000 test images).

    Parameters
    ----------
    root : str or PathLike, optional
        The data folder (default ``$POISONLAB_DATA_DIR``).
    train_batches, test_batches : sequence of int or str, optional
        The batches of each split, joined in the order given (whatever order the files are
        listed in): ``1`` .. ``5`` (``data_batch_N``), ``"test"`` (``test_batch``), or a file stem
        (``"data_batch_2"``, ``"test_batch_first1000"``). A batch cannot be on both sides; a
        requested batch that is missing is a DataError naming it. Defaults: test =
        ``test_batch`` (else ``test_batch_first1000.bin``); train = every ``data_batch_N``
        present and not in the test set, in order 1..5.
    verify : bool, default=True
        Check each file with a published MD5 (the canonical names) before reading it; pass
        False for a copy you changed or made yourself.

    Returns
    -------
    Splits
        Sample ids are ``cifar10:<batch>:<index>`` (``cifar10:data_batch_2:00042``), so an image
        keeps its id whichever side it is on; ``info["files"]`` lists the files read, in order.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> root = pathlib.Path(tempfile.mkdtemp()); folder = root / "cifar-10-batches-bin"; folder.mkdir()
    >>> for k, name in enumerate(["data_batch_1", "data_batch_2", "test_batch"]):
    ...     rec = np.zeros((2, 3073), np.uint8); rec[:, 0] = k
    ...     _ = (folder / f"{name}.bin").write_bytes(rec.tobytes())
    >>> s = load_cifar10(root, train_batches=(1,), test_batches=(2,), verify=False)
    >>> s.train.y.tolist(), s.test.y.tolist(), str(s.test.ids[0])
    ([0, 0], [1, 1], 'cifar10:data_batch_2:00000')
    """
    train_sel = _selection(train_batches, "train_batches")
    test_sel = _selection(test_batches, "test_batches")
    base = find_dir(root, "cifar10", "cifar-10")
    for sub, binary in (("cifar-10-batches-bin", True), ("cifar-10-batches-py", False)):
        folder = base / sub if (base / sub).is_dir() else None
        if folder is None and any(base.glob("data_batch_*")):
            folder, binary = base, any(base.glob("data_batch_*.bin"))
        if folder is None:
            continue
        train_files, test_files = _resolve(folder, binary, train_sel, test_sel)
        reader = read_binary_batch if binary else read_python_batch
        splits = []
        for split, files in (("train", train_files), ("test", test_files)):
            parts = []
            for path in files:
                if verify:
                    checksums.verify(path, "cifar10")
                parts.append(reader(path))
            imgs = np.concatenate([c[0] for c in parts])
            labels = np.concatenate([c[1] for c in parts])
            ids = np.concatenate([_sample_ids(p, len(c[1])) for p, c in zip(files, parts)])
            splits.append(Dataset(X=imgs.astype(np.float32) / 255.0, y=labels, classes=CLASSES,
                                  modality="image", ids=ids, name="cifar10",
                                  info={"files": [p.name for p in files],
                                        "format": "binary" if binary else "python"}))
        return Splits(*splits)
    raise DataError(f"no CIFAR-10 batches found under {base}")
