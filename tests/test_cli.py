"""The command line, through Typer's runner."""

import json

import numpy as np
from typer.testing import CliRunner

from poisonlab.cli.main import app

runner = CliRunner()


def test_demo_writes_results(tmp_path):
    out = tmp_path / "demo.json"
    r = runner.invoke(app, ["demo", "--epochs", "12", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["poisoned"]["attack_success_rate"] >= 0.9
    assert res["clean"]["attack_success_rate"] <= 0.1
    assert res["poisoned"]["clean_accuracy"] >= 0.9
    assert "attack success rate" in r.output


def test_attack_writes_poison_and_never_touches_input(tmp_path):
    src = tmp_path / "in.npz"
    X = np.random.default_rng(0).uniform(size=(50, 1, 6, 6)).astype(np.float32)
    np.savez(src, X=X, y=np.arange(50) % 5)
    before = src.read_bytes()
    out = tmp_path / "out.npz"
    r = runner.invoke(app, ["attack", "badnets", "--input", str(src), "--out", str(out),
                            "-p", "n_poison=5", "-p", "target=2", "-p", "value=1.0"])
    assert r.exit_code == 0, r.output
    assert src.read_bytes() == before
    z = np.load(out)
    assert z["poison_mask"].sum() == 5 and (z["y"][z["poison_mask"]] == 2).all()
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["n_poison"] == 5 and meta["target"] == 2
    # refuses to overwrite the output without --force, and the input ever
    r = runner.invoke(app, ["attack", "badnets", "--input", str(src), "--out", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(app, ["attack", "badnets", "--input", str(src), "--out", str(src), "--force"])
    assert r.exit_code == 2 and src.read_bytes() == before


def test_attack_errors_are_clear(tmp_path):
    r = runner.invoke(app, ["attack", "badnets", "--dataset", "digits", "--out", str(tmp_path / "o.npz"),
                            "-p", "poison_rate=2"])
    assert r.exit_code == 2 and "poison_rate must be in" in r.output
    r = runner.invoke(app, ["attack", "nope", "--dataset", "digits", "--out", str(tmp_path / "o.npz")])
    assert r.exit_code == 2 and "unknown attack" in r.output
    r = runner.invoke(app, ["attack", "badnets", "--dataset", "digits", "--out", str(tmp_path / "o.npz"),
                            "-p", "target=12"])
    assert r.exit_code == 2 and "existing class" in r.output
    assert not (tmp_path / "o.npz").exists()


def test_attack_on_builtin_dataset(tmp_path):
    out = tmp_path / "flip.npz"
    r = runner.invoke(app, ["attack", "random_label_flip", "--dataset", "digits", "--out", str(out),
                            "-p", "poison_rate=0.2", "--seed", "3"])
    assert r.exit_code == 0, r.output
    z = np.load(out)
    assert z["poison_mask"].mean() == np.round(0.2 * len(z["y"])) / len(z["y"])


def test_reproduce_list_and_unknown():
    r = runner.invoke(app, ["reproduce", "--list"])
    assert r.exit_code == 0 and "R1" in r.output and "R2" in r.output
    r = runner.invoke(app, ["reproduce", "R99"])
    assert r.exit_code == 2 and "unknown reproduction" in r.output


def test_attack_with_a_surrogate_and_a_target(tmp_path):
    """Targeted clean-label attacks from the command line: a safetensors surrogate, a target
    index; clear errors when either is missing."""
    from safetensors.torch import save_file

    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.models import ModelSpec

    src = tmp_path / "in.npz"
    X = np.random.default_rng(0).uniform(size=(60, 1, 8, 8)).astype(np.float32)
    np.savez(src, X=X, y=np.arange(60) % 3)
    out = tmp_path / "fc.npz"
    r = runner.invoke(app, ["attack", "feature_collision", "--input", str(src), "--out", str(out)])
    assert r.exit_code == 2 and "--surrogate" in r.output
    module = model_factory("cnn", "image")(ModelSpec((1, 8, 8), 3))
    weights = tmp_path / "m.safetensors"
    save_file(module.state_dict(), str(weights))
    args = ["attack", "feature_collision", "--input", str(src), "--out", str(out), "--surrogate", str(weights),
            "--architecture", "cnn", "-p", "steps=20", "-p", "n_poison=2", "-p", "base_class=1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "--target-index" in r.output
    r = runner.invoke(app, args + ["--target-index", "0"])
    assert r.exit_code == 0, r.output
    z = np.load(out)
    assert z["poison_mask"].sum() == 2 and np.array_equal(z["y"], np.arange(60) % 3)


def test_text_attack_round_trip_without_pickle(tmp_path):
    """Texts go in and out as unicode arrays (never pickled objects) and keep their modality."""
    from poisonlab.data import read_npz

    src = tmp_path / "texts.npz"
    texts = np.array(["win a free prize now", "see you at lunch", "call me later", "free entry to win"] * 10)
    np.savez(src, X=texts, y=np.array([1, 0, 0, 1] * 10))
    out = tmp_path / "p.npz"
    r = runner.invoke(app, ["attack", "badword", "--input", str(src), "--out", str(out), "-p", "n_poison=4",
                            "-p", "position=start"])
    assert r.exit_code == 0, r.output
    d = read_npz(out)
    assert d.modality == "text" and d.X.dtype == object
    assert sum(str(t).split()[0] in ("cf", "mn", "bb", "tq") for t in d.X) == 4
    with np.load(out, allow_pickle=False) as z:
        assert z["X"].dtype.kind == "U"


def _tiny_fsdd(root):
    """10 digits x 1 speaker x 7 takes of 0.2 s: a tone per digit, so the digits are learnable."""
    from tests.test_data import _wav

    folder = root / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    t = np.arange(1600) / 8000
    for d in range(10):
        for take in range(7):
            wave = 8000 * np.sin(2 * np.pi * (300 + 150 * d) * t + take)
            _wav(folder / f"{d}_amy_{take}.wav", 8000, wave)
    return root


def test_demo_and_attack_on_audio_work_on_waveforms(tmp_path):
    """Audio triggers are mixed into the waveform: the demo loads waveforms and trains a model
    with its own log-mel front end; `attack` writes poisoned waveforms."""
    root = _tiny_fsdd(tmp_path)
    r = runner.invoke(app, ["demo", "--dataset", "fsdd", "--data-dir", str(root), "--epochs", "2",
                            "--poison-rate", "0.2", "--out", str(tmp_path / "d.json")])
    assert r.exit_code == 0, r.output
    out = json.loads((tmp_path / "d.json").read_text())
    assert out["attack"]["name"] == "AudioTrigger" and out["architecture"] == "audio-wave-cnn"
    r = runner.invoke(app, ["attack", "audio_trigger", "--dataset", "fsdd", "--data-dir", str(root),
                            "--out", str(tmp_path / "p.npz"), "-p", "poison_rate=0.2"])
    assert r.exit_code == 0, r.output
    z = np.load(tmp_path / "p.npz")
    assert z["X"].shape == (20, 8000) and z["poison_mask"].sum() == 4  # takes 5-6 are the train split
