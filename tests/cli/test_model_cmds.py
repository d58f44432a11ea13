"""scan-model and monitor commands (poisonlab.cli.model_cmds) on the built-in digits."""

import json
import pickle

import numpy as np
import pytest
from typer.testing import CliRunner

from poisonlab.attacks.data import BadNets
from poisonlab.cli.main import app
from poisonlab.data import load_digits
from poisonlab.models import TorchClassifier, TrainConfig, build_model

runner = CliRunner()


def _cnn(spec):
    return build_model("cnn", spec)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from safetensors.torch import save_file

    s = load_digits()
    atk = BadNets(target=3, poison_rate=0.1, value=1.0, random_state=0)
    res = atk.poison(s.train.X, s.train.y)
    clf = TorchClassifier(_cnn, config=TrainConfig(epochs=25, lr=3e-3, batch_size=64)).fit(res.X, res.y)
    folder = tmp_path_factory.mktemp("model")
    path = folder / "digits_cnn.safetensors"
    save_file({k: v.contiguous() for k, v in clf.module_.state_dict().items()}, str(path))
    return path, atk, s


def test_scan_model_flags_target_and_repairs_beside(weights, tmp_path):
    path, _, _ = weights
    before = path.read_bytes()
    out = tmp_path / "report"
    r = runner.invoke(app, ["scan-model", str(path), "--dataset", "digits", "--n-clean", "200", "--epochs", "100",
                            "--repair", "unlearn", "--out-dir", str(out)])
    assert r.exit_code == 3, r.output  # a backdoor suspected: the exit code a CI gates on
    rep = json.loads((out / "report.json").read_text())
    assert rep["flagged_classes"] == [3] and rep["file_safety"]["safe"]
    assert (out / "trigger_class3.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((out / "record.json").read_text())
    assert record["kind"] == "model_scan" and record["results"]["flagged_classes"] == [3]
    repaired = path.with_name("digits_cnn.repaired-unlearn.safetensors")
    assert repaired.is_file() and path.read_bytes() == before


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/poisonlab_pwned",))


def test_scan_model_refuses_payload(tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Payload()))
    r = runner.invoke(app, ["scan-model", str(evil), "--dataset", "digits", "--out-dir", str(tmp_path / "o")])
    assert r.exit_code == 3 and "DANGEROUS" in r.output and "Traceback" not in r.output
    assert json.loads((tmp_path / "o" / "report.json").read_text())["verdict"] == "refused: unsafe file"
    assert json.loads((tmp_path / "o" / "record.json").read_text())["results"]["verdict"] == "refused: unsafe file"
    import os

    assert not os.path.exists("/tmp/poisonlab_pwned")


def test_scan_model_wrong_architecture(weights, tmp_path):
    path, _, _ = weights
    r = runner.invoke(app, ["scan-model", str(path), "--dataset", "digits", "--architecture", "mlp",
                            "--out-dir", str(tmp_path)])
    assert r.exit_code == 2 and "do not fit architecture 'mlp'" in " ".join(r.output.split())


def test_monitor_fit_save_load_score(weights, tmp_path):
    path, atk, s = weights
    mon = tmp_path / "monitor"
    r = runner.invoke(app, ["monitor", "fit", "--model", str(path), "--dataset", "digits", "--out", str(mon),
                            "--n-clean", "400", "--n-overlays", "20", "--false-positive-rate", "0.05"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in mon.iterdir()) == ["model.card.json", "model.safetensors", "strip.json", "strip.npz"]
    X = np.r_[s.train.X[:50], atk.apply_trigger(s.train.X[s.train.y != 3][:50])]
    batch = tmp_path / "batch.npz"
    np.savez(batch, X=X)
    out = tmp_path / "scores.csv"
    r = runner.invoke(app, ["monitor", "score", "--monitor", str(mon), "--input", str(batch), "--out", str(out)])
    assert r.exit_code == 3, r.output  # triggered inputs flagged
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    assert rows[50:, 2].mean() >= 0.8 and rows[:50, 2].mean() <= 0.2
    r = runner.invoke(app, ["monitor", "score", "--monitor", str(mon), "--input", str(batch), "--out", str(out),
                            "--no-fail", "--force"])
    assert r.exit_code == 0, r.output
    np.savez(batch, X=np.zeros((3, 1, 5, 5)))
    r = runner.invoke(app, ["monitor", "score", "--monitor", str(mon), "--input", str(batch), "--out", str(out),
                            "--force"])
    assert r.exit_code == 2 and "do not match" in r.output


def test_monitor_with_early_stop_keeps_it_and_agrees(weights, tmp_path):
    path, atk, s = weights
    X = np.r_[s.train.X[:50], atk.apply_trigger(s.train.X[s.train.y != 3][:50])]
    batch = tmp_path / "batch.npz"
    np.savez(batch, X=X)
    flags = {}
    for name, extra in (("full", []), ("seq", ["--early-stop", "4"])):
        mon = tmp_path / name
        r = runner.invoke(app, ["monitor", "fit", "--model", str(path), "--dataset", "digits", "--out", str(mon),
                                "--n-clean", "400", "--n-overlays", "20", "--false-positive-rate", "0.05", *extra])
        assert r.exit_code == 0, r.output
        out = tmp_path / f"{name}.csv"
        r = runner.invoke(app, ["monitor", "score", "--monitor", str(mon), "--input", str(batch), "--out", str(out)])
        assert r.exit_code == 3, r.output
        flags[name] = np.loadtxt(out, delimiter=",", skiprows=1)[:, 2]
    assert json.loads((tmp_path / "seq" / "strip.json").read_text())["params"]["early_stop"] == 4.0
    assert (flags["seq"] == flags["full"]).mean() >= 0.95


def test_monitor_normal_boundary_is_saved_and_used(weights, tmp_path):
    path, _, _ = weights
    thresholds = {}
    for rule in ("quantile", "normal"):
        mon = tmp_path / rule
        r = runner.invoke(app, ["monitor", "fit", "--model", str(path), "--dataset", "digits", "--out", str(mon),
                                "--n-clean", "400", "--n-overlays", "20", "--false-positive-rate", "0.05",
                                "--boundary", rule])
        assert r.exit_code == 0, r.output
        meta = json.loads((mon / "strip.json").read_text())
        assert meta["params"]["boundary"] == rule
        thresholds[rule] = meta["threshold"]
    assert thresholds["quantile"] != thresholds["normal"]
    r = runner.invoke(app, ["monitor", "fit", "--model", str(path), "--dataset", "digits", "--out",
                            str(tmp_path / "bad"), "--n-clean", "400", "--n-overlays", "20", "--boundary", "gauss"])
    assert r.exit_code == 2 and "boundary" in r.output
