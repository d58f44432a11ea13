"""`poisonlab run`, `poisonlab train` and the command-line round trip train -> scan-model ->
monitor fit -> monitor score on digits, with no Python in between."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from poisonlab.cli.main import app, demo_scenario
from poisonlab.runs import Scenario, load_scenario

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _ok(args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r.output


def test_demo_is_the_example_scenario():
    assert Scenario.model_validate(demo_scenario()).to_dict() == load_scenario(EXAMPLES / "demo.yaml").to_dict()


def test_train_scan_model_monitor_round_trip(tmp_path):
    poisoned, weights = tmp_path / "poisoned.npz", tmp_path / "model.safetensors"
    _ok(["attack", "badnets", "--dataset", "digits", "--out", poisoned, "-p", "poison_rate=0.1",
         "-p", "value=1.0", "-p", "target=3"])
    out = _ok(["train", "--input", poisoned, "--out", weights, "--epochs", "25", "--lr", "0.003",
               "--batch-size", "64"])
    assert "attack success rate" in out
    card = json.loads((tmp_path / "model.card.json").read_text())
    assert card["architecture"] == "cnn" and card["n_samples"] == 1347
    assert card["metrics"]["clean_accuracy"] > 0.9 and card["metrics"]["attack_success_rate"] > 0.9
    # the card names the training data: the poisoned file's inputs and labels
    assert len(card["data_sha256"]) == 64
    report = tmp_path / "report"
    out = _ok(["scan-model", weights, "--dataset", "digits", "--n-clean", "200", "--epochs", "100",
               "--out-dir", report], code=3)  # 3: a backdoor suspected
    assert json.loads((report / "report.json").read_text())["flagged_classes"] == [3]
    monitor = tmp_path / "monitor"
    _ok(["monitor", "fit", "--model", weights, "--dataset", "digits", "--out", monitor,
         "--n-clean", "200", "--n-overlays", "30", "--false-positive-rate", "0.05"])
    with np.load(poisoned) as z:
        batch = z["X"][z["poison_mask"]][:20]
    np.savez(tmp_path / "batch.npz", X=batch)
    out = _ok(["monitor", "score", "--monitor", monitor, "--input", tmp_path / "batch.npz",
               "--out", tmp_path / "scores.csv"], code=3)  # 3: inputs flagged
    rows = (tmp_path / "scores.csv").read_text().strip().splitlines()[1:]
    flagged = sum(int(r.split(",")[-1]) for r in rows)
    assert flagged >= 15, out  # triggered inputs are flagged


def test_train_refuses_existing_output_and_bad_names(tmp_path):
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"mine")
    r = runner.invoke(app, ["train", "--dataset", "digits", "--out", str(weights)])
    assert r.exit_code == 2 and "exists" in r.output and weights.read_bytes() == b"mine"
    r = runner.invoke(app, ["train", "--dataset", "digits", "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and ".safetensors" in r.output
    r = runner.invoke(app, ["train", "--dataset", "digits", "--out", str(tmp_path / "x.safetensors"),
                            "--architecture", "resnet-9000"])
    assert r.exit_code == 2 and "unknown architecture" in r.output
    assert not (tmp_path / "x.safetensors").exists()


def test_run_writes_a_record_and_resumes_a_grid(tmp_path):
    scenario = tmp_path / "grid.yaml"
    scenario.write_text(
        "name: g\ndataset: digits\nmodel: {architecture: mlp, train: {epochs: 2}}\n"
        "attacks: [{name: badnets, params: {poison_rate: 0.05, value: 1.0}}]\n"
        "sweep: {detectors: [spectral, knn_label]}\n")
    out = _ok(["run", scenario, "--out-dir", tmp_path / "out"])
    assert "record:" in out and "2 cells (0 from the cache)" in out
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    assert record["kind"] == "grid" and len(record["results"]["cells"]) == 2
    r = runner.invoke(app, ["run", str(scenario), "--out-dir", str(tmp_path / "out")])
    assert r.exit_code == 2 and "record.json" in r.output and "--force" in r.output  # checked before work
    out = _ok(["run", scenario, "--out-dir", tmp_path / "out", "--force"])
    assert "2 cells (2 from the cache)" in out
    assert json.loads((tmp_path / "out" / "record.json").read_text())["fingerprint"] == record["fingerprint"]


@pytest.mark.parametrize("text, message", [
    ("dataset: digits\nattacks: [{name: badnets, params: {poison_rate: 1.5}}]\n",
     "attacks[0].params.poison_rate"),
    ("dataset: digitz\n", "unknown dataset 'digitz'"),
    ("dataset: [unclosed\n", "invalid YAML"),
])
def test_run_bad_scenarios_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    r = runner.invoke(app, ["run", str(path), "--out-dir", str(tmp_path / "out")])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_run_rejects_unknown_backend(tmp_path):
    r = runner.invoke(app, ["run", str(EXAMPLES / "demo.yaml"), "--backend", "spark"])
    assert r.exit_code == 2 and "--backend must be one of" in r.output


def test_the_federated_example_runs_and_prints_its_table(tmp_path):
    out = _ok(["run", EXAMPLES / "federated-digits.yaml", "--out-dir", tmp_path])
    assert "federated, 20 clients (4 malicious)" in out
    record = json.loads((tmp_path / "record.json").read_text())
    fed = record["results"]["federate"]
    assert fed["rounds"] == 100 and fed["malicious"] == [0, 1, 2, 3] and fed["accuracy"] > 0.5
