"""The bad-input table of issue 16, one test per row, through the console script's ``main()``.

Every test checks the exit code, that the error is one ``error: ...`` line (no traceback, at most
two lines on stderr), and that the command's input files are byte for byte what they were
(sha256 before and after). Rows that must fail *before any work* replace the workflow the work
would start with by a function that fails the test if it is ever called.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.cli.cli_helpers import assert_one_line_error, poisonlab, snapshot


def _images(path, n=60, seed=0, **extra):
    rng = np.random.default_rng(seed)
    np.savez(path, X=rng.uniform(size=(n, 1, 8, 8)).astype(np.float32), y=np.arange(n) % 3, **extra)
    return path


def _no_work(monkeypatch, target):
    """Make ``target`` (``"module:function"``) fail the test when called."""
    module, name = target.split(":")

    def refuse(*args, **kwargs):
        raise AssertionError(f"{target} ran: the input should have been refused before any work")

    monkeypatch.setattr(f"{module}.{name}", refuse)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """An untrained CNN for digits, saved with its model card (enough for every check here)."""
    import torch

    from poisonlab.models import ModelSpec, model_factory, save_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    path = folder / "cnn.safetensors"
    module = model_factory("cnn", "image")(ModelSpec((1, 8, 8), 10))
    save_model(module, path, architecture="cnn", spec=ModelSpec((1, 8, 8), 10), modality="image")
    return path


@pytest.fixture(scope="module")
def monitor(digits_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("monitor") / "strip"
    r = poisonlab("monitor", "fit", "--model", digits_model, "--dataset", "digits", "--out", folder,
                  "--n-clean", "100", "--n-overlays", "10", "--false-positive-rate", "0.2")
    assert r.code == 0, r.output
    return folder


# --- Files are lost ----------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["same path", "symlink", "hard link"])
def test_monitor_score_never_writes_over_its_input_batch(monitor, tmp_path, how):
    batch = _images(tmp_path / "batch.npz")
    out = {"same path": batch, "symlink": tmp_path / "link.npz", "hard link": tmp_path / "hard.npz"}[how]
    if how == "symlink":
        out.symlink_to(batch)
    elif how == "hard link":
        os.link(batch, out)
    before = snapshot(batch, monitor)
    r = poisonlab("monitor", "score", "--monitor", monitor, "--input", batch, "--out", out, "--force")
    assert_one_line_error(r, contains=("is the input", "never writes over its inputs"))
    assert snapshot(batch, monitor) == before


def test_monitor_score_never_writes_into_the_monitor_it_reads(monitor, tmp_path):
    batch = _images(tmp_path / "batch.npz")
    before = snapshot(batch, monitor)
    r = poisonlab("monitor", "score", "--monitor", monitor, "--input", batch, "--out", monitor / "strip.json",
                  "--force")
    assert_one_line_error(r, contains="inside the input folder")
    assert snapshot(batch, monitor) == before


def test_demo_refuses_an_existing_out_before_any_work(tmp_path, monkeypatch):
    _no_work(monkeypatch, "poisonlab.runs:Runner")
    victim = tmp_path / "victim.npz"
    victim.write_bytes(b"my own file")
    r = poisonlab("demo", "--out", victim)
    assert_one_line_error(r, contains=("victim.npz exists", "--force"))
    assert victim.read_bytes() == b"my own file"


def test_attack_refuses_an_existing_sidecar_and_never_touches_a_users_json(tmp_path, monkeypatch):
    src = _images(tmp_path / "in.npz")
    mine, side = tmp_path / "out.json", tmp_path / "out.poison.json"
    mine.write_text('{"owner": "me"}')
    side.write_text('{"also": "mine"}')
    before = snapshot(src, mine, side)
    _no_work(monkeypatch, "poisonlab.data:read_npz")
    r = poisonlab("attack", "badnets", "--input", src, "--out", tmp_path / "out.npz")
    assert_one_line_error(r, contains=("out.poison.json exists", "--force"))
    assert snapshot(src, mine, side) == before and not (tmp_path / "out.npz").exists()


# --- Tracebacks instead of messages ------------------------------------------------------------

def test_scan_model_prune_with_more_clean_inputs_than_digits_has(digits_model, tmp_path, monkeypatch):
    """digits has 450 test inputs: an explicit --n-clean 500 is refused before Neural Cleanse."""
    before = snapshot(digits_model.parent)
    _no_work(monkeypatch, "poisonlab.runs.model_scan:scan_model")
    r = poisonlab("scan-model", digits_model, "--dataset", "digits", "--repair", "prune", "--n-clean", "500",
                  "--out-dir", tmp_path / "o")
    assert_one_line_error(r, contains=("--n-clean 500 exceeds the 450 test inputs of digits",
                                       "--n-clean 225 or less"))
    r = poisonlab("scan-model", digits_model, "--dataset", "digits", "--repair", "prune", "--n-clean", "300",
                  "--out-dir", tmp_path / "o")
    assert_one_line_error(r, contains="leaves 150 of the 450 test inputs")
    assert snapshot(digits_model.parent) == before


def test_scan_model_prune_default_adapts_to_digits_and_says_so(digits_model, tmp_path):
    before = snapshot(digits_model.parent)
    out = tmp_path / "o"
    r = poisonlab("scan-model", digits_model, "--dataset", "digits", "--repair", "prune", "--epochs", "1",
                  "--out-dir", out, columns=250)
    report = json.loads((out / "report.json").read_text())
    assert r.code == (3 if report["flagged_classes"] else 0), r.output
    assert "Traceback" not in r.output and "error:" not in r.stderr
    assert all(ln.startswith("warning: ") for ln in r.error_lines())  # warnings, if any, one line each
    assert "note: Neural Cleanse uses 225 clean inputs (half of the 450 test inputs of digits" in r.stdout
    assert report["n_clean"] == 225
    # the model and its card are untouched; a repaired copy (if any) is a new file beside them
    assert {p: h for p, h in snapshot(digits_model.parent).items() if p in before} == before


@pytest.mark.parametrize("kind", ["images", "texts"])
def test_scan_data_refuses_constant_inputs(tmp_path, monkeypatch, kind):
    src = tmp_path / "const.npz"
    X = np.ones((60, 1, 8, 8), np.float32) if kind == "images" else np.array(["the same text"] * 60)
    np.savez(src, X=X, y=np.arange(60) % 3)
    before = snapshot(src)
    _no_work(monkeypatch, "poisonlab.runs.scan:scan")
    r = poisonlab("scan-data", "--input", src, "--out-dir", tmp_path / "scan")
    assert_one_line_error(r, contains="all 60 samples are identical")
    assert snapshot(src) == before and not (tmp_path / "scan").exists()


@pytest.mark.parametrize("command", ["attack", "train", "monitor score", "demo"])
def test_an_out_that_is_a_folder(command, tmp_path, monitor, monkeypatch):
    src = _images(tmp_path / "in.npz")
    folder = tmp_path / {"attack": "out.npz", "train": "m.safetensors"}.get(command, "out.csv")
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    before = snapshot(src, folder, monitor)
    _no_work(monkeypatch, "poisonlab.runs:Runner")
    args = {"attack": ["attack", "badnets", "--input", src, "--out", folder],
            "train": ["train", "--input", src, "--out", folder],
            "monitor score": ["monitor", "score", "--monitor", monitor, "--input", src, "--out", folder],
            "demo": ["demo", "--out", folder]}[command]
    r = poisonlab(*args, "--force")
    assert_one_line_error(r, contains="is a folder; give a file name")
    assert snapshot(src, folder, monitor) == before


@pytest.mark.parametrize("command", ["scan-data", "scan-model", "monitor fit", "run", "reproduce"])
def test_an_output_folder_that_is_a_file_is_refused_before_work(command, tmp_path, digits_model, monkeypatch):
    for target in ("poisonlab.runs.scan:scan", "poisonlab.runs.model_scan:scan_model",
                   "poisonlab.runs.monitor:fit_monitor", "poisonlab.runs:Runner",
                   "poisonlab.reproductions:run_reproduction"):
        _no_work(monkeypatch, target)
    blocker = tmp_path / "results"
    blocker.write_text("a file of mine")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\ndataset: digits\n")
    args = {"scan-data": ["scan-data", "--dataset", "digits", "--out-dir", blocker],
            "scan-model": ["scan-model", digits_model, "--dataset", "digits", "--out-dir", blocker],
            "monitor fit": ["monitor", "fit", "--model", digits_model, "--dataset", "digits", "--out", blocker],
            "run": ["run", scenario, "--out-dir", blocker],
            "reproduce": ["reproduce", "R2", "--out-dir", blocker]}[command]
    before = snapshot(blocker, scenario, digits_model.parent)
    r = poisonlab(*args, "--force")
    assert_one_line_error(r, contains=("results is a file; give a folder",))
    r = poisonlab(*[blocker / "sub" if a == blocker else a for a in args], "--force")
    assert_one_line_error(r, contains="is a file, not a folder")
    assert snapshot(blocker, scenario, digits_model.parent) == before


@pytest.mark.parametrize("command", ["scan-data", "train"])
def test_a_corrupt_sidecar(command, tmp_path, monkeypatch):
    src = _images(tmp_path / "p.npz")
    side = tmp_path / "p.poison.json"
    side.write_text('{"attack": "badnets", "params": {')
    before = snapshot(src, side)
    _no_work(monkeypatch, "poisonlab.runs.scan:scan")
    _no_work(monkeypatch, "poisonlab.runs.train:train_reference")
    args = (["scan-data", "--input", src, "--out-dir", tmp_path / "scan"] if command == "scan-data"
            else ["train", "--input", src, "--out", tmp_path / "m.safetensors"])
    r = poisonlab(*args)
    assert_one_line_error(r, contains="p.poison.json is not a valid sidecar")
    assert snapshot(src, side) == before


def test_an_object_array_to_features(tmp_path, monkeypatch):
    feats = tmp_path / "f.npy"
    np.save(feats, np.array([{"a": 1}] * 1347, dtype=object), allow_pickle=True)
    before = snapshot(feats)
    _no_work(monkeypatch, "poisonlab.runs.scan:scan")
    r = poisonlab("scan-data", "--dataset", "digits", "--features", feats, "--out-dir", tmp_path / "scan")
    line = assert_one_line_error(r, contains="holds Python objects (an object array)")
    assert "allow_pickle" not in line and snapshot(feats) == before


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "random bytes", "empty", "no X", "object X"])
def test_a_bad_batch_to_monitor_score(damage, monitor, tmp_path):
    good = _images(tmp_path / "good.npz", n=30)
    raw = good.read_bytes()
    batch = tmp_path / "batch.npz"
    if damage == "truncated":
        batch.write_bytes(raw[: len(raw) // 2])
    elif damage == "corrupt":
        body = bytearray(raw)
        body[200:260] = bytes(range(60))
        batch.write_bytes(bytes(body))
    elif damage == "random bytes":
        batch.write_bytes(np.random.default_rng(0).bytes(600))
    elif damage == "empty":
        np.savez(batch, X=np.zeros((0, 1, 8, 8), np.float32))
    elif damage == "no X":
        np.savez(batch, inputs=np.zeros((3, 1, 8, 8), np.float32))
    else:
        np.savez(batch, X=np.array([None, 1], dtype=object))
    before = snapshot(batch, monitor)
    r = poisonlab("monitor", "score", "--monitor", monitor, "--input", batch, "--out", tmp_path / "s.csv")
    expected = {"truncated": "not a readable .npz file", "corrupt": "damaged", "random bytes": "not a readable .npz file",
                "empty": "empty batch", "no X": "must hold the inputs under 'X'",
                "object X": "holds Python objects"}[damage]
    line = assert_one_line_error(r, contains=expected)
    assert "allow_pickle" not in line and "Aborted" not in r.output
    assert snapshot(batch, monitor) == before and not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("command", ["attack", "scan-data", "train"])
def test_a_random_bytes_npz_gets_no_numpy_advice(command, tmp_path):
    src = tmp_path / "rand.npz"
    src.write_bytes(np.random.default_rng(1).bytes(500))
    before = snapshot(src)
    args = {"attack": ["attack", "badnets", "--input", src, "--out", tmp_path / "o.npz"],
            "scan-data": ["scan-data", "--input", src, "--out-dir", tmp_path / "scan"],
            "train": ["train", "--input", src, "--out", tmp_path / "m.safetensors"]}[command]
    r = poisonlab(*args)
    line = assert_one_line_error(r, contains="rand.npz is not a readable .npz file: not a zip archive")
    assert "allow_pickle" not in line and "pickle" not in line
    assert snapshot(src) == before


@pytest.mark.parametrize("classes", [True, False])
def test_attack_refuses_labels_out_of_range_before_poisoning(classes, tmp_path, monkeypatch):
    """y = 99 with 10 classes: named classes, or labels 0..9 plus one 99 (no class names)."""
    y = np.r_[np.arange(19) % 10, 99]
    extra = {"classes": np.array([str(i) for i in range(10)])} if classes else {}
    src = tmp_path / "y99.npz"
    np.savez(src, X=np.random.default_rng(0).uniform(size=(20, 1, 8, 8)).astype(np.float32), y=y, **extra)
    before = snapshot(src)
    _no_work(monkeypatch, "poisonlab.attacks.data.BadNets:poison")
    r = poisonlab("attack", "badnets", "--input", src, "--out", tmp_path / "o.npz")
    expected = "holds label 99 but there are only 10 classes" if classes else "have no sample: labels out of range"
    assert_one_line_error(r, contains=expected)
    assert snapshot(src) == before and not (tmp_path / "o.npz").exists()


def test_contamination_is_checked_before_the_reference_model_trains(tmp_path, monkeypatch):
    _no_work(monkeypatch, "poisonlab.runs.scan:scan")
    _no_work(monkeypatch, "poisonlab.models.training:train_module")
    r = poisonlab("scan-data", "--dataset", "digits", "--contamination", "0.9", "--out-dir", tmp_path / "scan")
    assert_one_line_error(r, contains="--contamination must be in (0, 0.5]; got 0.9")


def test_scan_model_given_a_folder_says_it_is_a_folder(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "inside.txt").write_text("x")
    before = snapshot(folder)
    r = poisonlab("scan-model", folder, "--dataset", "digits", "--out-dir", tmp_path / "o")
    line = assert_one_line_error(r, contains="is a folder; give a file")
    assert "does not exist" not in line and snapshot(folder) == before


# --- Nothing to gate on ------------------------------------------------------------------------

def test_scan_model_exit_code_follows_its_verdict(digits_model, tmp_path):
    out = tmp_path / "o"
    r = poisonlab("scan-model", digits_model, "--dataset", "digits", "--n-clean", "60", "--epochs", "1",
                  "--out-dir", out)
    report = json.loads((out / "report.json").read_text())
    assert r.code == (3 if report["flagged_classes"] else 0), (report["verdict"], r.output)
    r = poisonlab("scan-model", digits_model, "--dataset", "digits", "--n-clean", "60", "--epochs", "1",
                  "--out-dir", out, "--force", "--no-fail")
    assert r.code == 0, r.output


def test_monitor_score_exits_3_when_it_flags_and_0_with_no_fail(monitor, tmp_path):
    """The fixture's threshold flags 20% of clean inputs: some of 60 are flagged."""
    batch = _images(tmp_path / "batch.npz")
    before = snapshot(batch)
    r = poisonlab("monitor", "score", "--monitor", monitor, "--input", batch, "--out", tmp_path / "s.csv")
    flags = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)[:, 2]
    assert flags.sum() > 0 and r.code == 3, r.output
    r = poisonlab("monitor", "score", "--monitor", monitor, "--input", batch, "--out", tmp_path / "s.csv",
                  "--force", "--no-fail")
    assert r.code == 0 and snapshot(batch) == before


def test_scan_data_exits_3_when_it_quarantines_and_0_when_nothing_is(tmp_path, monkeypatch):
    from poisonlab.data import load_digits
    from poisonlab.runs import scan as scan_module

    train = load_digits().train
    feats = tmp_path / "f.npy"
    np.save(feats, train.X.reshape(len(train), -1))
    args = ["scan-data", "--dataset", "digits", "--features", feats, "--detectors", "robust_outliers"]
    r = poisonlab(*args, "--out-dir", tmp_path / "a")
    quarantined = (tmp_path / "a" / "quarantine.txt").read_text().split()
    assert quarantined and r.code == 3, r.output
    assert poisonlab(*args, "--out-dir", tmp_path / "b", "--no-fail").code == 0
    real = scan_module.scan

    def finds_nothing(*a, **kw):
        result = real(*a, **kw)
        result.quarantine[:] = False
        return result

    monkeypatch.setattr(scan_module, "scan", finds_nothing)
    r = poisonlab(*args, "--out-dir", tmp_path / "c")
    assert r.code == 0 and (tmp_path / "c" / "quarantine.txt").read_text().strip() == "", r.output
