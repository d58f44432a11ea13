"""CIFAR-10 in its two official formats: binary batches and python (pickled) batches.

Python batches are pickles. They are checked against the published MD5 first and then read
with a restricted unpickler that can only build dicts, lists, bytes and numpy arrays, so a
tampered batch cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..exceptions import DataError
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
        obj = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a valid CIFAR-10 python batch: {exc}") from exc
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        raise DataError(f"{path} is not a CIFAR-10 python batch (no data/labels)")
    data = np.asarray(obj[b"data"], dtype=np.uint8)
    labels = np.asarray(obj[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path}: data shape {data.shape} / {len(labels)} labels is not CIFAR-10")
    return data.reshape(-1, 3, 32, 32), labels


def _batches(folder: Path, binary: bool) -> tuple[list[Path], Path | None]:
    suffix = ".bin" if binary else ""
    train = [folder / f"data_batch_{i}{suffix}" for i in range(1, 6)]
    train = [p for p in train if p.is_file()]
    test = folder / f"test_batch{suffix}"
    if not test.is_file():
        alt = [folder / "test_batch_first1000.bin", folder.parent / "test_batch_first1000.bin"]
        test = next((p for p in alt if binary and p.is_file()), None)
    return train, test


def load_cifar10(root=None, *, verify: bool = True) -> Splits:
    """CIFAR-10 as ``(N, 3, 32, 32)`` float32 in [0, 1].

    Accepts a full copy in either format (``cifar-10-batches-bin`` or ``cifar-10-batches-py``) or
    the partial copy of ``shared/datasets/cifar10`` (batches 1-2 and the first 1000 test images):
    train = every ``data_batch_N`` present, test = ``test_batch`` or else
    ``test_batch_first1000.bin``. ``info["files"]`` says which were used. Each file with a
    published MD5 is verified before it is read.
    """
    base = find_dir(root, "cifar10", "cifar-10")
    for sub, binary in (("cifar-10-batches-bin", True), ("cifar-10-batches-py", False)):
        folder = base / sub if (base / sub).is_dir() else None
        if folder is None and any(base.glob("data_batch_*")):
            folder, binary = base, any(base.glob("data_batch_*.bin"))
        if folder is None:
            continue
        train_files, test_file = _batches(folder, binary)
        if not train_files or test_file is None:
            raise DataError(f"{folder} lacks CIFAR-10 training batches or a test batch")
        reader = read_binary_batch if binary else read_python_batch
        parts = []
        for path in [*train_files, test_file]:
            if verify:
                checksums.verify(path, "cifar10")
            parts.append(reader(path))
        splits = []
        for split, chunk in (("train", parts[:-1]), ("test", parts[-1:])):
            imgs = np.concatenate([c[0] for c in chunk])
            labels = np.concatenate([c[1] for c in chunk])
            files = [p.name for p in (train_files if split == "train" else [test_file])]
            ids = np.array([f"cifar10:{split}:{i:05d}" for i in range(len(labels))])
            splits.append(Dataset(X=imgs.astype(np.float32) / 255.0, y=labels, classes=CLASSES,
                                  modality="image", ids=ids, name="cifar10",
                                  info={"files": files, "format": "binary" if binary else "python"}))
        return Splits(*splits)
    raise DataError(f"no CIFAR-10 batches found under {base}")
