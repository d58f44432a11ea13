"""CIFAR-10: load_cifar10 with batches chosen by name on tiny synthetic batch files, the real partial
copy, damaged binary batches, and python batches that are never allowed to run code."""

import pickle

import numpy as np
import pytest

from poisonlab import ChecksumError, DataError, InvalidParameterError
from poisonlab.data import load_cifar10
from poisonlab.data.cifar import read_python_batch

BATCHES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]


def _write(folder, names, binary=True, n=3):
    """Batch k holds ``n`` records whose label is k and whose first pixel is k * 10 + i."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        data = np.zeros((n, 3072), np.uint8)
        data[:, 0] = k * 10 + np.arange(n)
        labels = np.full(n, k, np.uint8)
        if binary:
            (folder / f"{name}.bin").write_bytes(np.concatenate([labels[:, None], data], axis=1).tobytes())
        else:
            (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": labels.tolist()}))


def _first_pixels(ds):
    return np.rint(ds.X[:, 0, 0, 0] * 255).astype(int).tolist()


@pytest.mark.parametrize("binary", [True, False])
def test_batches_are_joined_in_the_order_given(tmp_path, binary):
    _write(tmp_path / ("cifar-10-batches-bin" if binary else "cifar-10-batches-py"), BATCHES, binary)
    s = load_cifar10(tmp_path, train_batches=(5, 1, 3), test_batches=(2,), verify=False)
    assert s.train.y.tolist() == [4] * 3 + [0] * 3 + [2] * 3
    assert _first_pixels(s.test) == [10, 11, 12]
    suffix = ".bin" if binary else ""
    assert s.train.info["files"] == [f"data_batch_5{suffix}", f"data_batch_1{suffix}", f"data_batch_3{suffix}"]
    assert s.test.ids.tolist() == [f"cifar10:data_batch_2:{i:05d}" for i in range(3)]
    assert s.train.ids[0] == "cifar10:data_batch_5:00000"


def test_order_does_not_depend_on_file_listing_order(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    _write(folder, list(reversed(BATCHES[:5])), n=2)  # written 5..1, labels 0..4 in that order
    s = load_cifar10(tmp_path, train_batches=(1, 2), test_batches=("data_batch_4.bin",), verify=False)
    assert s.train.y.tolist() == [4, 4, 3, 3] and s.test.y.tolist() == [1, 1]


def test_defaults_every_data_batch_present_and_the_test_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    _write(folder, ["data_batch_2", "data_batch_1", "test_batch"])
    s = load_cifar10(tmp_path, verify=False)
    assert s.train.info["files"] == ["data_batch_1.bin", "data_batch_2.bin"]
    assert s.test.info["files"] == ["test_batch.bin"] and s.test.y.tolist() == [2, 2, 2]
    # a data batch chosen as the test set leaves the training default
    s = load_cifar10(tmp_path, test_batches=(2,), verify=False)
    assert s.train.info["files"] == ["data_batch_1.bin"] and s.test.info["files"] == ["data_batch_2.bin"]


def test_partial_copy_first_1000_test_images_share_test_batch_ids(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    _write(folder, ["data_batch_1"])
    _write(tmp_path, ["test_batch_first1000"])
    s = load_cifar10(tmp_path, verify=False)
    assert s.test.info["files"] == ["test_batch_first1000.bin"]
    assert s.test.ids[0] == "cifar10:test_batch:00000"
    assert load_cifar10(tmp_path, test_batches=("test_batch_first1000",), verify=False).test.info["files"] == \
        ["test_batch_first1000.bin"]


def test_missing_requested_batch_is_named(tmp_path):
    _write(tmp_path / "cifar-10-batches-bin", ["data_batch_1", "data_batch_2", "test_batch"])
    with pytest.raises(DataError, match=r"batch 'data_batch_3' \(train_batches\) is not in .* \(binary format\)") as err:
        load_cifar10(tmp_path, train_batches=(1, 3), verify=False)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"'data_batch_5' \(test_batches\)"):
        load_cifar10(tmp_path, test_batches=(5,), verify=False)


@pytest.mark.parametrize("kwargs, msg", [
    ({"train_batches": (6,)}, "train_batches: unknown CIFAR-10 batch 6"),
    ({"test_batches": ("validation",)}, "test_batches: unknown CIFAR-10 batch 'validation'"),
    ({"train_batches": (True,)}, "unknown CIFAR-10 batch True"),
    ({"train_batches": ()}, "train_batches must name at least one batch"),
    ({"train_batches": 3.5}, "train_batches must be a sequence of batch names; got 3.5"),
    ({"train_batches": (1, "data_batch_1")}, "train_batches names batch 'data_batch_1' twice"),
    ({"train_batches": (1, 2), "test_batches": (2,)}, "'data_batch_2' is in both train_batches and test_batches"),
])
def test_bad_selections(tmp_path, kwargs, msg):
    _write(tmp_path / "cifar-10-batches-bin", BATCHES)
    with pytest.raises(InvalidParameterError, match=msg):
        load_cifar10(tmp_path, verify=False, **kwargs)


def test_verify_checks_the_canonical_names_so_synthetic_files_need_verify_false(tmp_path):
    _write(tmp_path / "cifar-10-batches-bin", ["data_batch_1", "test_batch"])
    with pytest.raises(ChecksumError, match="does not match the published md5"):
        load_cifar10(tmp_path, train_batches=(1,))
    assert len(load_cifar10(tmp_path, train_batches=(1,), verify=False).train) == 3


def test_real_partial_copy_with_explicit_batches(data_dir):
    s = load_cifar10(data_dir, train_batches=(2,), test_batches=(1,))
    assert s.train.info["files"] == ["data_batch_2.bin"] and len(s.train) == len(s.test) == 10000
    assert s.test.ids[0] == "cifar10:data_batch_1:00000"


def test_cifar_partial_real(data_dir):
    s = load_cifar10(data_dir)
    assert s.train.X.shape == (20000, 3, 32, 32) and s.test.X.shape == (1000, 3, 32, 32)
    assert s.train.info["files"] == ["data_batch_1.bin", "data_batch_2.bin"]
    assert s.test.info["files"] == ["test_batch_first1000.bin"]
    assert s.train.classes[0] == "airplane"


def test_cifar_binary_user_copy_and_truncation(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("data_batch_1.bin", "test_batch.bin"):
        rec = np.concatenate([np.arange(10, dtype=np.uint8)[:, None] % 10,
                              rng.integers(0, 256, (10, 3072), dtype=np.uint8)], axis=1)
        (folder / name).write_bytes(rec.tobytes())
    s = load_cifar10(tmp_path, verify=False)
    assert s.train.X.shape == (10, 3, 32, 32) and s.test.info["files"] == ["test_batch.bin"]
    with pytest.raises(ChecksumError):
        load_cifar10(tmp_path)
    (folder / "test_batch.bin").write_bytes((folder / "test_batch.bin").read_bytes()[:-7])
    with pytest.raises(DataError, match="not a whole number"):
        load_cifar10(tmp_path, verify=False)


class _Boom:
    def __reduce__(self):
        return (exec, ("import sys; sys.exit(99)",))


def test_cifar_python_batch_never_runs_code(tmp_path):
    good = tmp_path / "good"
    good.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}))
    X, y = read_python_batch(good)
    assert X.shape == (2, 3, 32, 32) and y.tolist() == [0, 1]
    evil = tmp_path / "evil"
    evil.write_bytes(pickle.dumps({b"data": _Boom(), b"labels": [0]}))
    with pytest.raises(DataError, match="refusing to load global builtins.exec"):
        read_python_batch(evil)
