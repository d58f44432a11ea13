"""The command line (poisonlab.cli.main), through Typer's runner: demo, attack, scan-data, reproduce."""

import json

import numpy as np
from typer.testing import CliRunner

from poisonlab.cli.main import app

runner = CliRunner()


def test_demo_writes_results(tmp_path):
    out = tmp_path / "demo.json"
    r = runner.invoke(app, ["demo", "--epochs", "12", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())["results"]["train"]
    assert res["poisoned"]["attack_success_rate"] >= 0.9
    assert res["clean"]["attack_success_rate"] <= 0.1
    assert res["poisoned"]["clean_accuracy"] >= 0.9
    assert "attack success rate" in r.output
    before = out.read_bytes()  # an existing record is never replaced without --force
    r = runner.invoke(app, ["demo", "--epochs", "1", "--out", str(out)])
    assert r.exit_code == 2 and "--force" in r.output and out.read_bytes() == before


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
    meta = json.loads((tmp_path / "out.poison.json").read_text())
    assert meta["n_poison"] == 5 and meta["target"] == 2 and meta["attack"] == "badnets"
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

    from poisonlab.models import ModelSpec, model_factory

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
    from tests.data.test_audio import _wav

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
    assert out["scenario"]["attacks"][0]["name"] == "audio_trigger"
    assert out["results"]["data"]["modality"] == "audio" and out["results"]["data"]["train"]["n"] == 20
    assert "attack_success_rate" in out["results"]["train"]["poisoned"]
    r = runner.invoke(app, ["attack", "audio_trigger", "--dataset", "fsdd", "--data-dir", str(root),
                            "--out", str(tmp_path / "p.npz"), "-p", "poison_rate=0.2"])
    assert r.exit_code == 0, r.output
    z = np.load(tmp_path / "p.npz")
    assert z["X"].shape == (20, 8000) and z["poison_mask"].sum() == 4  # takes 5-6 are the train split


def test_scan_data_cli_end_to_end(tmp_path):
    src = tmp_path / "p.npz"
    r = runner.invoke(app, ["attack", "badnets", "--dataset", "digits", "--out", str(src),
                            "-p", "poison_rate=0.05", "-p", "value=1.0"])
    assert r.exit_code == 0, r.output
    before = src.read_bytes()
    out = tmp_path / "scan"
    r = runner.invoke(app, ["scan-data", "--input", str(src), "--epochs", "8", "--retrain",
                            "--detectors", "spectre,robust_outliers,activation_clustering",
                            "--out-dir", str(out), "--top", "5"])
    assert r.exit_code == 3, r.output  # 3: samples quarantined
    assert src.read_bytes() == before, "the scan must not change the user's data"
    rep = json.loads((out / "scores.json").read_text())
    assert rep["evaluation"]["robust_outliers"]["auroc"] >= 0.9
    assert set(rep["retrain"]) >= {"before", "after", "n_removed"}
    assert "attack_success_rate" in rep["retrain"]["before"]
    q = (out / "quarantine.txt").read_text().split()
    assert len(q) == rep["n_quarantined"] and all(i.startswith("digits:") for i in q)
    header = (out / "scores.csv").read_text().splitlines()[0]
    assert header.startswith("id,label,combined,quarantined,spectre,spectre_flag")
    # a versioned run record beside them, which `poisonlab report` renders
    record = json.loads((out / "record.json").read_text())
    assert record["kind"] == "scan" and record["scenario"]["command"] == "scan-data"
    assert record["results"]["n_quarantined"] == rep["n_quarantined"] and record["environment"]["versions"]
    r = runner.invoke(app, ["report", str(out / "record.json"), "--html", str(tmp_path / "scan.html")])
    assert r.exit_code == 0 and (tmp_path / "scan.html").read_text().startswith("<!DOCTYPE html>"), r.output


def test_scan_data_cli_bad_input(tmp_path):
    r = runner.invoke(app, ["scan-data", "--dataset", "digits", "--features", str(tmp_path / "missing.npy")])
    assert r.exit_code == 2 and "missing.npy" in r.output
    f = tmp_path / "f.npy"
    np.save(f, np.zeros((10, 3)))
    r = runner.invoke(app, ["scan-data", "--dataset", "digits", "--features", str(f)])
    assert r.exit_code == 2 and "f.npy has 10 rows but the data has 1347 samples" in r.output
    np.save(f, np.zeros((1347, 3)))
    r = runner.invoke(app, ["scan-data", "--dataset", "digits", "--contamination", "0.9", "--features", str(f)])
    assert r.exit_code == 2 and "contamination must be in" in r.output
    w = tmp_path / "m.pt"
    w.write_bytes(b"not a model")
    r = runner.invoke(app, ["scan-data", "--dataset", "digits", "--model", str(w)])
    assert r.exit_code == 2 and "safetensors" in r.output


def test_attack_keeps_a_users_json_and_scan_data_reports_a_corrupt_sidecar(tmp_path):
    out = tmp_path / "p.npz"
    mine = tmp_path / "p.json"
    mine.write_text('{"owner": "me"}')
    r = runner.invoke(app, ["attack", "badnets", "--dataset", "digits", "--out", str(out), "-p", "poison_rate=0.05"])
    assert r.exit_code == 0, r.output
    assert mine.read_text() == '{"owner": "me"}' and (tmp_path / "p.poison.json").is_file()
    (tmp_path / "p.poison.json").write_text('{"attack": "badnets", "params": {')
    with np.load(out) as z:
        np.save(tmp_path / "f.npy", z["X"].reshape(len(z["y"]), -1))
    r = runner.invoke(app, ["scan-data", "--input", str(out), "--features", str(tmp_path / "f.npy"),
                            "--detectors", "robust_outliers", "--out-dir", str(tmp_path / "scan")])
    assert r.exit_code == 2 and "p.poison.json is not a valid sidecar" in " ".join(r.output.split())
    assert "Traceback" not in r.output


def test_attack_help_lists_every_attack_with_parameters_defaults_and_constraints():
    """The same table as `poisonlab list attacks` (one formatting: cli.registry_view)."""
    from poisonlab import registry
    from poisonlab.cli.registry_view import _parameters
    from tests.cli.cli_helpers import poisonlab

    r = poisonlab("attack", "--help", columns=400)
    assert r.code == 0, r.output
    text = " ".join(r.stdout.split())
    for e in registry.entries("attack"):
        if e.stage == "federated":  # client updates, not datasets: named in a federation scenario
            assert f" {e.name} " not in text, e.name
            continue
        assert f" {e.name} " in text, e.name
        for line in _parameters(e.obj).splitlines():
            assert " ".join(line.split()) in text, (e.name, line)
    assert "poison_rate=0.1: in (0, 1] or None" in text


def test_attack_refuses_a_federated_attack_in_one_line(tmp_path):
    from tests.cli.cli_helpers import assert_one_line_error, poisonlab

    r = poisonlab("attack", "alie", "--dataset", "digits", "--out", tmp_path / "o.npz")
    assert_one_line_error(r, contains="'alie' is a federated attack")
    assert not (tmp_path / "o.npz").exists()


def test_attack_params_are_checked_before_any_data_is_loaded(tmp_path):
    from tests.cli.cli_helpers import assert_one_line_error, poisonlab

    r = poisonlab("attack", "badnets", "--dataset", "mnist", "--data-dir", tmp_path / "nowhere",
                  "-p", "poison_rate=1.5", "--out", tmp_path / "o.npz")
    assert_one_line_error(r, contains="BadNets.poison_rate must be in (0, 1] or None; got 1.5")
    r = poisonlab("attack", "badnets", "--dataset", "mnist", "--data-dir", tmp_path / "nowhere",
                  "-p", "colour=red", "--out", tmp_path / "o.npz")
    assert_one_line_error(r, contains="'colour'")


def test_reproduce_list_and_plan_show_minutes_and_data(tmp_path):
    from poisonlab.reproductions import REPRODUCTIONS
    from tests.cli.cli_helpers import poisonlab

    r = poisonlab("reproduce", "--list", columns=300)
    assert r.code == 0 and "min/seed" in r.stdout
    for rep in REPRODUCTIONS.values():
        row = next(ln for ln in r.stdout.splitlines() if f" {rep.id} " in ln)
        assert f"{rep.minutes:.1f}" in row and all(d in row for d in rep.data), row
    r1, r2 = REPRODUCTIONS["R1"], REPRODUCTIONS["R2"]
    out = tmp_path / "rep"
    r = poisonlab("reproduce", "R1", "R2", "--seeds", "2", "--dry-run", "--out-dir", out, columns=300)
    total = 2 * (r1.minutes + r2.minutes)
    assert r.code == 0, r.output
    text = " ".join(r.stdout.split())
    assert f"R1 ({r1.minutes:.1f} min x 2 seed(s))" in text and f"about {total:.0f} min in all" in text
    assert "data: " + ", ".join(dict.fromkeys([*r1.data, *r2.data])) in text
    assert not out.exists()  # a dry run writes nothing
