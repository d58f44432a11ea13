"""IDX files and the MNIST loaders: real files (class counts from shared/datasets/README.md) and
damaged ones."""

import gzip
import hashlib
import shutil
import struct

import numpy as np
import pytest

from poisonlab import ChecksumError, DataError
from poisonlab.data import load_fashion_mnist, load_mnist, read_idx


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_mnist_real(data_dir):
    s = load_mnist(data_dir)
    assert s.train.X.shape == (60000, 1, 28, 28) and s.test.X.shape == (10000, 1, 28, 28)
    assert s.train.class_counts().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert s.train.X.dtype == np.float32 and 0 <= s.train.X.min() and s.train.X.max() == 1.0
    assert s.train.ids[42] == "mnist:train:00042"


def test_fashion_mnist_real(data_dir):
    s = load_fashion_mnist(data_dir)
    assert set(s.train.class_counts()) == {6000} and set(s.test.class_counts()) == {1000}
    assert s.train.classes[9] == "Ankle boot"


def test_shared_files_are_not_modified(data_dir):
    f = data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz"
    before = sha(f)
    load_mnist(data_dir)
    assert sha(f) == before


def _idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08}[arr.dtype]
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def _write_mnist(folder, n=20, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labs = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr in (("images-idx3", imgs), ("labels-idx1", labs)):
            name = f"{prefix}-{kind}-ubyte"
            data = _idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


def test_user_mnist_copy_raw_and_gz(tmp_path):
    s = load_mnist(_write_mnist(tmp_path / "raw", gz=False), verify=False)
    assert s.train.X.shape == (20, 1, 28, 28)
    s = load_mnist(_write_mnist(tmp_path / "gz"), verify=False)
    assert s.test.class_counts().tolist() == [2] * 10


def test_wrong_checksum_is_refused(tmp_path):
    folder = _write_mnist(tmp_path / "m")
    with pytest.raises(ChecksumError, match="does not match the published sha256"):
        load_mnist(folder)


def test_truncated_gz(tmp_path):
    folder = _write_mnist(tmp_path / "m")
    f = folder / "train-images-idx3-ubyte.gz"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="damaged or truncated gzip"):
        read_idx(f)
    with pytest.raises(DataError, match="truncated"):
        load_mnist(folder, verify=False)


def test_truncated_real_file_fails_checksum(data_dir, tmp_path):
    dst = tmp_path / "mnist"
    dst.mkdir()
    for f in (data_dir / "mnist").iterdir():
        shutil.copy(f, dst / f.name)
    target = dst / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(ChecksumError, match="t10k-labels"):
        load_mnist(dst)
    with pytest.raises(DataError, match="truncated"):
        load_mnist(dst, verify=False)


def test_idx_header_errors(tmp_path):
    f = tmp_path / "x-idx1-ubyte"
    f.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(f)
    f.write_bytes(_idx_bytes(np.zeros(10, np.uint8))[:-3])
    with pytest.raises(DataError, match="truncated or padded"):
        read_idx(f)
