"""Loaders: real files (class counts from shared/datasets/README.md) and damaged ones."""

import gzip
import hashlib
import io
import pickle
import shutil
import struct
import wave
import zipfile

import numpy as np
import pytest

from poisonlab import ChecksumError, DataError
from poisonlab.data import (
    Dataset,
    load_adult,
    load_cifar10,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_fsdd,
    load_german_credit,
    load_mnist,
    load_sms_spam,
    load_sst2,
    log_mel_spectrogram,
    mfcc,
    read_csv,
    read_idx,
    read_image_folder,
    read_npz,
    read_text_tsv,
    read_text_folder,
    read_wav,
)
from poisonlab.data.audio import mel_filterbank
from poisonlab.data.cifar import read_python_batch


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- built-in default ------------------------------------------------------------------------

def test_digits_needs_no_files(monkeypatch):
    monkeypatch.delenv("POISONLAB_DATA_DIR", raising=False)
    s = load_dataset("digits")
    assert s.train.X.shape[1:] == (1, 8, 8) and len(s.train) + len(s.test) == 1797
    assert s.train.X.max() <= 1.0 and s.train.modality == "image"
    assert np.array_equal(load_digits().train.ids, s.train.ids)


def test_missing_data_dir_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("POISONLAB_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="POISONLAB_DATA_DIR"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nope")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")


# --- real data ---------------------------------------------------------------------------------

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


def test_cifar_partial_real(data_dir):
    s = load_cifar10(data_dir)
    assert s.train.X.shape == (20000, 3, 32, 32) and s.test.X.shape == (1000, 3, 32, 32)
    assert s.train.info["files"] == ["data_batch_1.bin", "data_batch_2.bin"]
    assert s.test.info["files"] == ["test_batch_first1000.bin"]
    assert s.train.classes[0] == "airplane"


def test_text_real(data_dir):
    sms = load_sms_spam(data_dir)
    counts = sms.train.class_counts() + sms.test.class_counts()
    assert counts.tolist() == [4827, 747] and sms.train.classes == ("ham", "spam")
    sst = load_sst2(data_dir)
    assert sst.train.class_counts().tolist() == [29780, 37569]
    assert sst.test.class_counts().tolist() == [428, 444]


def test_tabular_real(data_dir):
    a = load_adult(data_dir)
    assert len(a.train) == 32561 and len(a.test) == 16281
    assert a.train.X.shape[1] == a.test.X.shape[1] == len(a.encoder.feature_names_)
    assert np.isfinite(a.train.X).all() and "sex=Female" in a.train.feature_names
    assert a.encoder.unknown_counts_ == {}  # every test category was seen in training
    assert "native-country=Holand-Netherlands" in a.train.feature_names  # one row, in train only
    g = load_german_credit(data_dir)
    assert len(g.train) + len(g.test) == 1000
    assert (g.train.class_counts() + g.test.class_counts()).tolist() == [700, 300]


def test_fsdd_real(data_dir):
    s = load_fsdd(data_dir)
    assert len(s.train) == 2700 and len(s.test) == 300
    assert set(s.train.class_counts()) == {270} and s.train.X.shape[1:2] == (1,)
    assert set(s.train.metadata["contributor"]) == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    assert np.isfinite(s.train.X).all()


def test_shared_files_are_not_modified(data_dir):
    f = data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz"
    before = sha(f)
    load_mnist(data_dir)
    assert sha(f) == before


# --- damaged files -------------------------------------------------------------------------------

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


def test_text_loaders_bad_input(tmp_path):
    f = tmp_path / "t.tsv"
    f.write_bytes(b"sentence\tlabel\ngood film\t1\n\xff\xfe bad\t0\n")
    with pytest.raises(DataError, match="not valid UTF-8 \\(line 3"):
        read_text_tsv(f)
    f.write_text("sentence\tlabel\ngood\t1\n \t0\n")
    with pytest.raises(DataError, match="empty text"):
        read_text_tsv(f)
    f.write_text("sentence\tlabel\ngood\t1\nbad\t7\n")
    with pytest.raises(DataError, match="label '7' is not one of"):
        read_text_tsv(f, classes=("neg", "pos"))
    sms = tmp_path / "sms"
    sms.mkdir()
    (sms / "SMSSpamCollection").write_text("ham\thi\nspamm\tbuy\n")
    with pytest.raises(DataError, match="line 2"):
        load_sms_spam(sms, verify=False)
    z = tmp_path / "z"
    z.mkdir()
    (z / "smsspamcollection.zip").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="not a readable SMS Spam zip"):
        load_sms_spam(z, verify=False)


def test_sms_zip_equals_tsv(data_dir, tmp_path):
    shutil.copy(data_dir / "sms-spam-collection" / "smsspamcollection.zip", tmp_path)
    a, b = load_sms_spam(tmp_path), load_sms_spam(data_dir)
    assert np.array_equal(a.train.X, b.train.X) and np.array_equal(a.train.y, b.train.y)


def test_text_folder_and_empty_class(tmp_path):
    for cls, texts in (("neg", ["bad", "awful"]), ("pos", ["great"])):
        (tmp_path / cls).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / cls / f"{i}.txt").write_text(t)
    ds = read_text_folder(tmp_path)
    assert ds.class_counts().tolist() == [2, 1] and ds.ids[2] == "pos/0.txt"
    (tmp_path / "zzz").mkdir()
    with pytest.raises(DataError, match="empty class"):
        read_text_folder(tmp_path)


def test_csv_and_encoder(tmp_path):
    f = tmp_path / "fraud.csv"
    rows = ["amount,country,label"] + [f"{i * 10},{'FR' if i % 2 else 'DE'},{'fraud' if i % 5 == 0 else 'ok'}"
                                       for i in range(40)]
    f.write_text("\n".join(rows))
    s = read_csv(f, label_column="label")
    assert s.train.classes == ("fraud", "ok") and s.train.X.shape[1] == 3
    assert s.encoder.transform(np.array([["5", "US"]], dtype=object)).tolist()[0][1:] == [0.0, 0.0]
    f.write_text("amount,label\n1,a\n2\n")
    with pytest.raises(DataError, match="row 3 has 1 fields"):
        read_csv(f, label_column="label")
    with pytest.raises(DataError, match="label column 'y'"):
        read_csv(tmp_path / "fraud.csv", label_column="y")


def test_npz_and_pickle_refusal(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, X=np.zeros((4, 1, 3, 3)), y=np.array([0, 1, 0, 1]))
    ds = read_npz(f)
    assert ds.classes == ("0", "1") and len(ds) == 4
    np.savez(f, X=np.array([object(), object()], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="never unpickled"):
        read_npz(f)
    f.write_bytes(f.read_bytes()[:30])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_npz(f)
    np.savez(f, X=np.zeros((3, 2)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="3 samples but y has 2"):
        read_npz(f)


def test_image_folder(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((5, 6, 3), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = read_image_folder(tmp_path)
    assert ds.X.shape == (4, 3, 5, 6) and ds.classes == ("cat", "dog")
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="not a readable image"):
        read_image_folder(tmp_path)


def _wav(path, rate, data):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(data, dtype="<i2").tobytes())


def test_wav_reading_and_bad_rate(tmp_path):
    f = tmp_path / "a.wav"
    _wav(f, 8000, [0, 16384, -32768])
    wav, rate = read_wav(f, expected_rate=8000)
    assert rate == 8000 and wav.tolist() == [0.0, 0.5, -1.0]
    _wav(f, 16000, [0, 1])
    with pytest.raises(DataError, match="16000 Hz; expected 8000"):
        read_wav(f, expected_rate=8000)
    f.write_bytes(b"RIFF....WAVE")
    with pytest.raises(DataError, match="not a readable PCM WAV"):
        read_wav(f)


def test_mel_features_hand_checks():
    fb = mel_filterbank(8000, 256, 32)
    assert fb.shape == (32, 129) and (fb >= 0).all() and fb.max() <= 1.0
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)[None]
    S = log_mel_spectrogram(tone, 8000)
    band = S[0].mean(axis=1).argmax()
    centres = np.linspace(0, 2595 * np.log10(1 + 4000 / 700), 34)[1:-1]
    assert abs(700 * (10 ** (centres[band] / 2595) - 1) - 1000) < 150  # the 1 kHz band lights up
    M = mfcc(tone, 8000, n_mfcc=13)
    assert M.shape == (1, 13, S.shape[2]) and np.isfinite(M).all()


def test_dataset_container_validation():
    X = np.zeros((3, 2))
    with pytest.raises(DataError, match="label 2 but there are only 2 classes"):
        Dataset(X=X, y=[0, 1, 2], classes=("a", "b"), modality="tabular", ids=["a", "b", "c"])
    with pytest.raises(DataError, match="unique"):
        Dataset(X=X, y=[0, 1, 0], classes=("a", "b"), modality="tabular", ids=["a", "a", "c"])
    with pytest.raises(DataError, match="modality"):
        Dataset(X=X, y=[0, 1, 0], classes=("a", "b"), modality="video", ids=["a", "b", "c"])
    ds = Dataset(X=X, y=[0, 1, 0], classes=("a", "b", "c"), modality="tabular", ids=["a", "b", "c"],
                 metadata={"contributor": ["u1", "u2", "u1"]})
    assert ds.class_counts().tolist() == [2, 1, 0]  # an empty class is counted, not dropped
    sub = ds.subset([2, 0])
    assert sub.ids.tolist() == ["c", "a"] and sub.metadata["contributor"].tolist() == ["u1", "u1"]
