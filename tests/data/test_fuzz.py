"""Loader fuzzing: arbitrary bytes, truncations and byte flips of every file format poisonlab
reads never raise anything but a ``DataError`` (``ChecksumError`` is one).

Each format starts from a valid file (checked to load); hypothesis then writes arbitrary bytes,
a prefix of the valid file, or the valid file with bytes overwritten, and calls the loader.
Example counts are small (the whole file runs in about 30 s on one core; set
``POISONLAB_FUZZ_EXAMPLES`` to fuzz deeper); a failure prints the bytes that broke the loader.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import pickle
import struct
import tempfile
import wave
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poisonlab.exceptions import DataError

#: Examples per format: 40 in the test suite (derandomized: the same bytes every run);
#: ``POISONLAB_FUZZ_EXAMPLES=2000`` fuzzes deeper, with fresh random bytes each run.
EXAMPLES = int(os.environ.get("POISONLAB_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="POISONLAB_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- valid files of every format ---------------------------------------------------------------

def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npz_data() -> bytes:
    rng = np.random.default_rng(0)
    return _npz(X=rng.uniform(size=(12, 1, 4, 4)).astype(np.float32), y=np.arange(12) % 3,
                poison_mask=np.arange(12) < 2, classes=np.array(["a", "b", "c"]))


def _idx() -> bytes:
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    return bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 3, 4, 4) + images.tobytes()


def _cifar_binary() -> bytes:
    rec = np.zeros((2, 3073), np.uint8)
    rec[:, 0] = [1, 7]
    return rec.tobytes()


def _cifar_python() -> bytes:
    return pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 7]}, protocol=4)


def _csv() -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["age", "colour", "label"])
    for i in range(12):
        w.writerow([20 + i, ["red", "blue"][i % 2], ["yes", "no"][i % 2]])
    return out.getvalue().encode()


def _tsv() -> bytes:
    rows = ["sentence\tlabel"] + [f"text number {i}\t{i % 2}" for i in range(8)]
    return ("\n".join(rows) + "\n").encode()


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(400) / 5) * 8000).astype("<i2").tobytes())
    return buf.getvalue()


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.arange(64, dtype=np.uint8).reshape(8, 8) * 3)).save(buf, format="PNG")
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).normal(size=(12, 5)).astype(np.float32))
    return buf.getvalue()


def _sidecar() -> bytes:
    return json.dumps({"format": "poisonlab.poison-sidecar", "version": 1, "data_file": "p.npz",
                       "attack": "badnets", "params": {"poison_rate": 0.1, "target": 0},
                       "source": "digits", "n_samples": 12, "n_poison": 2}).encode()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny MLP saved with its card, and a STRIP monitor folder around a tiny CNN."""
    from poisonlab.defenses.inference import STRIP
    from poisonlab.models import ModelSpec, TorchClassifier, model_factory, save_model

    folder = tmp_path_factory.mktemp("saved")
    mlp = model_factory("mlp", "tabular")(ModelSpec((4,), 2))
    save_model(mlp, folder / "m.safetensors", architecture="mlp", spec=ModelSpec((4,), 2))
    spec = ModelSpec((1, 8, 8), 3)
    cnn = model_factory("cnn", "image")(spec)
    X = np.random.default_rng(0).uniform(size=(40, 1, 8, 8)).astype(np.float32)
    det = STRIP(n_overlays=4, false_positive_rate=0.25, random_state=0).fit(X, model=TorchClassifier.from_trained(cnn, n_classes=3))
    monitor = folder / "monitor"
    det.save(monitor)
    save_model(cnn, monitor / "model.safetensors", architecture="cnn", spec=spec)
    return folder


# --- the fuzzing -------------------------------------------------------------------------------

def _variants(valid: bytes) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, a prefix of ``valid``, or ``valid`` with up to 8 bytes overwritten."""
    prefix = st.integers(0, max(len(valid) - 1, 0)).map(lambda n: valid[:n])

    def flip(edits):
        body = bytearray(valid)
        for pos, value in edits:
            body[pos % len(body)] = value
        return bytes(body)

    flips = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8).map(flip)
    return st.one_of(st.binary(max_size=512), prefix, flips)


def _loads_or_data_error(load: Callable[[Path], object], name: str, data: bytes,
                         others: dict[str, bytes] | None = None) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for other, content in (others or {}).items():
            (Path(d) / other).parent.mkdir(parents=True, exist_ok=True)
            (Path(d) / other).write_bytes(content)
        path.write_bytes(data)
        try:
            load(path)
        except DataError:
            pass


def _read_npz(p):
    from poisonlab.data import read_npz

    return read_npz(p)


def _read_poisoned(p):
    from poisonlab.runs.sidecar import read_poisoned

    return read_poisoned(p)


def _read_batch(p):
    from poisonlab.runs.monitor import read_batch

    return read_batch(p)


def _read_features(p):
    from poisonlab.data import read_features

    return read_features(p)


def _read_idx(p):
    from poisonlab.data import read_idx

    return read_idx(p)


def _read_cifar_binary(p):
    from poisonlab.data.cifar import read_binary_batch

    return read_binary_batch(p)


def _read_cifar_python(p):
    from poisonlab.data.cifar import read_python_batch

    return read_python_batch(p)


def _read_csv(p):
    from poisonlab.data import read_csv

    return read_csv(p, label_column="label", test_fraction=0.25)


def _read_tsv(p):
    from poisonlab.data import read_text_tsv

    return read_text_tsv(p)


def _read_wav(p):
    from poisonlab.data import read_wav

    return read_wav(p, expected_rate=8000)


def _read_image_folder(p):
    from poisonlab.data import read_image_folder

    return read_image_folder(p.parent.parent, grayscale=True)


def _read_text_folder(p):
    from poisonlab.data import read_text_folder

    return read_text_folder(p.parent.parent)


def _read_sidecar(p):
    from poisonlab.runs.sidecar import attack_from_sidecar, read_sidecar

    meta, where = read_sidecar(p.with_name("p.npz"))
    if meta is not None:  # a sidecar that parses is also rebuilt, as scan-data --retrain does
        attack_from_sidecar({**meta, "source": "not-a-dataset"}, where=where)


def _sms_spam(p):
    from poisonlab.data import load_sms_spam

    return load_sms_spam(p.parent.parent, verify=False)


GOOD = {
    "npz": (_read_npz, "d.npz", _npz_data),
    "poisoned npz": (_read_poisoned, "d.npz", _npz_data),
    "monitor batch": (_read_batch, "d.npz", _npz_data),
    "npy features": (_read_features, "f.npy", _npy),
    "idx": (_read_idx, "t-images-idx3-ubyte", _idx),
    "idx.gz": (_read_idx, "t-images-idx3-ubyte.gz", lambda: gzip.compress(_idx())),
    "cifar binary": (_read_cifar_binary, "data_batch_1.bin", _cifar_binary),
    "cifar python": (_read_cifar_python, "data_batch_1", _cifar_python),
    "csv": (_read_csv, "t.csv", _csv),
    "tsv": (_read_tsv, "t.tsv", _tsv),
    "wav": (_read_wav, "0_amy_1.wav", _wav),
    "sms spam": (_sms_spam, "sms-spam/SMSSpamCollection",
                 lambda: b"ham\thello there\nspam\twin a prize\nham\tsee you\nspam\tfree entry\n" * 3),
}


@pytest.mark.parametrize("fmt", sorted(GOOD))
def test_valid_files_load(fmt):
    load, name, make = GOOD[fmt]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
        assert load(path) is not None or fmt == "sidecar"


@pytest.mark.parametrize("fmt", sorted(GOOD))
def test_damaged_files_raise_only_data_errors(fmt):
    load, name, make = GOOD[fmt]

    @FUZZ
    @given(data=_variants(make()))
    def run(data):
        _loads_or_data_error(load, name, data)

    run()


@FUZZ
@given(data=_variants(_png()))
def test_damaged_image_in_a_folder(data):
    good = _png()
    _loads_or_data_error(_read_image_folder, "imgs/b/1.png", data, others={"imgs/a/0.png": good})


@FUZZ
@given(data=_variants("a text of class b\n".encode()) | st.binary(max_size=64))
def test_damaged_text_in_a_folder(data):
    _loads_or_data_error(_read_text_folder, "texts/b/1.txt", data, others={"texts/a/0.txt": b"a text of class a"})


@FUZZ
@given(data=_variants(_sidecar()))
def test_damaged_sidecar(data):
    _loads_or_data_error(_read_sidecar, "p.poison.json", data, others={"p.npz": _npz_data()})


@FUZZ
@given(data=_variants(b"ham\thello\nspam\twin\n"))
def test_damaged_sms_spam_zip(data):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SMSSpamCollection", data)
    _loads_or_data_error(_sms_spam, "sms-spam/smsspamcollection.zip", buf.getvalue())


def _copy_model(saved: Path, d: Path, name: str, data: bytes) -> Path:
    for f in saved.iterdir():
        if f.is_file():
            (d / f.name).write_bytes(f.read_bytes())
    (d / name).write_bytes(data)
    return d / "m.safetensors"


def _load_model_or_data_error(path: Path, **kw) -> None:
    from poisonlab.models import load_model

    try:
        load_model(path, **kw)
    except DataError:
        pass


def test_damaged_safetensors_and_model_cards(saved_model):
    from poisonlab.models import ModelSpec

    weights = (saved_model / "m.safetensors").read_bytes()
    card = (saved_model / "m.card.json").read_bytes()

    @FUZZ
    @given(data=_variants(weights), with_card=st.booleans())
    def weights_damaged(data, with_card):
        with tempfile.TemporaryDirectory() as d:
            path = _copy_model(saved_model, Path(d), "m.safetensors", data)
            if not with_card:
                (Path(d) / "m.card.json").unlink()
            _load_model_or_data_error(path, architecture="mlp", spec=ModelSpec((4,), 2))

    @FUZZ
    @given(data=_variants(card))
    def card_damaged(data):
        with tempfile.TemporaryDirectory() as d:
            path = _copy_model(saved_model, Path(d), "m.card.json", data)
            _load_model_or_data_error(path)

    weights_damaged()
    card_damaged()


@pytest.mark.parametrize("member", ["strip.json", "strip.npz", "model.safetensors", "model.card.json"])
def test_damaged_monitor_folder(saved_model, member):
    from poisonlab.runs.monitor import load_monitor

    good = saved_model / "monitor"
    load_monitor(good)  # the valid folder loads

    @settings(FUZZ, max_examples=max(EXAMPLES // 2, 10))
    @given(data=_variants((good / member).read_bytes()))
    def run(data):
        with tempfile.TemporaryDirectory() as d:
            for f in good.iterdir():
                (Path(d) / f.name).write_bytes(f.read_bytes())
            (Path(d) / member).write_bytes(data)
            try:
                load_monitor(d)
            except DataError:
                pass

    run()
