"""MNIST and Fashion-MNIST: the IDX format (LeCun et al.), gzipped or raw."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..exceptions import DataError
from . import checksums
from .dataset import Dataset, Splits, make_ids
from .paths import find_dir, require_file

#: IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes: 2 zero bytes, a type code, the rank, big-endian dims, then the data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{source} is not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{source}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{source} is truncated inside its header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{source} is truncated or padded: header says {dims} ({expected} bytes of data), "
            f"file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped (``.gz``) or raw, with clear errors for damaged files."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path} is a damaged or truncated gzip file: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    return parse_idx(raw, str(path))


def _load_idx_pair(folder: Path, prefix: str, dataset: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    img = require_file(folder, f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte",
                       f"{prefix}-images.idx3-ubyte")
    lab = require_file(folder, f"{prefix}-labels-idx1-ubyte.gz", f"{prefix}-labels-idx1-ubyte",
                       f"{prefix}-labels.idx1-ubyte")
    if verify:
        checksums.verify(img, dataset)
        checksums.verify(lab, dataset)
    images, labels = read_idx(img), read_idx(lab)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{img.name} / {lab.name}: shapes {images.shape} and {labels.shape} do not pair up")
    if labels.max() > 9:
        raise DataError(f"{lab} holds label {labels.max()}; MNIST-style labels are 0..9")
    return images, labels


def _load_mnist_like(name: str, root, folder_names, classes, verify: bool) -> Splits:
    folder = find_dir(root, *folder_names)
    out = []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = _load_idx_pair(folder, prefix, name, verify)
        X = (images.astype(np.float32) / 255.0)[:, None, :, :]
        out.append(Dataset(X=X, y=labels.astype(np.int64), classes=classes, modality="image",
                           ids=make_ids(name, split, len(labels)), name=name,
                           metadata={"source": np.full(len(labels), f"{name}/{prefix}")},
                           info={"folder": str(folder)}))
    return Splits(*out)


def load_mnist(root=None, *, verify: bool = True) -> Splits:
    """MNIST: 60,000 train / 10,000 test 28x28 digits as ``(N, 1, 28, 28)`` float32 in [0, 1].

    ``root`` is the datasets folder (holding ``mnist/``) or the folder of the four IDX files.
    With ``verify`` the published SHA-256 of each ``.gz`` file is checked first.
    """
    return _load_mnist_like("mnist", root, ("mnist", "MNIST/raw", "MNIST"),
                            tuple(str(i) for i in range(10)), verify)


def load_fashion_mnist(root=None, *, verify: bool = True) -> Splits:
    """Fashion-MNIST: as :func:`load_mnist`, 10 clothing classes."""
    return _load_mnist_like("fashion-mnist", root, ("fashion-mnist", "FashionMNIST/raw"),
                            FASHION_CLASSES, verify)
