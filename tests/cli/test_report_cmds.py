"""`poisonlab report RUN [--html]` and `--report` on run, scan-data and scan-model: one
self-contained HTML file from each, checked before any work like every other output."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from .cli_helpers import assert_one_line_error, poisonlab, snapshot

REPO = Path(__file__).resolve().parents[2]


def _kind(html: Path) -> str:
    text = html.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text and "default-src 'none'" in text
    start = text.index('name="poisonlab-record-kind" content="') + len('name="poisonlab-record-kind" content="')
    return text[start:text.index('"', start)]


def test_report_of_a_record_file_or_folder(tmp_path):
    folder = tmp_path / "R2"
    folder.mkdir()
    (folder / "record.json").write_bytes((REPO / "docs" / "results" / "R2.json").read_bytes())
    before = snapshot(folder)
    out = poisonlab("report", folder)
    assert out.code == 0, out.output
    assert _kind(folder / "report.html") == "reproduction"  # default: beside the record
    assert "R2: BadNets poison-rate sweep on MNIST" in (folder / "report.html").read_text()
    html = tmp_path / "elsewhere" / "r2.html"
    assert poisonlab("report", folder / "record.json", "--html", html).code == 0 and html.exists()
    # an existing report is kept without --force; the record is never written over
    kept = html.read_bytes()
    assert_one_line_error(poisonlab("report", folder, "--html", html), contains="--force")
    assert html.read_bytes() == kept
    assert poisonlab("report", folder, "--html", html, "--force").code == 0
    assert_one_line_error(poisonlab("report", folder, "--html", folder / "record.json", "--force"),
                          contains="input")
    assert snapshot(folder / "record.json") == {folder / "record.json": before[folder / "record.json"]}


def test_report_refuses_what_is_not_a_record(tmp_path):
    assert_one_line_error(poisonlab("report", tmp_path), contains="holds no record.json")
    (tmp_path / "x.json").write_text("[1, 2")
    assert_one_line_error(poisonlab("report", tmp_path / "x.json"), contains="not a JSON run record")
    (tmp_path / "y.json").write_text('{"hello": 1}')
    assert_one_line_error(poisonlab("report", tmp_path / "y.json"), contains="not a run record")
    assert not list(tmp_path.glob("*.html"))


def test_run_with_report(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "tiny", "dataset": "digits", "model": {"architecture": "mlp", "train": {"epochs": 2}},
        "attacks": [{"name": "badnets", "params": {"poison_rate": 0.1, "target": 0, "value": 1.0}}],
        "defenses": {"data": ["spectral"]}, "retrain": True, "seeds": [0]}))
    html = tmp_path / "tiny.html"
    out = poisonlab("run", scenario, "--out-dir", tmp_path / "out", "--report", html)
    assert out.code == 0, out.output
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    text = html.read_text()
    assert _kind(html) == "run"
    asr = record["results"]["train"]["poisoned"]["attack_success_rate"]
    assert f'data-key="/results/train/poisoned/attack_success_rate" data-value="{json.dumps(asr)}"' in text
    assert 'id="scan"' in text and "most suspicious samples" in text
    # checked before any work: a report path that is the scenario, or a folder, costs nothing
    assert_one_line_error(poisonlab("run", scenario, "--out-dir", tmp_path / "o2", "--report", scenario),
                          contains="input")
    assert_one_line_error(poisonlab("run", scenario, "--out-dir", tmp_path / "o3", "--report", tmp_path),
                          contains="folder")
    assert not (tmp_path / "o2" / "record.json").exists() and not (tmp_path / "o3" / "record.json").exists()


def test_scan_data_with_report(tmp_path):
    from poisonlab.data import load_digits

    train = load_digits().train
    feats = tmp_path / "feats.npy"
    np.save(feats, train.X.reshape(len(train), -1))
    html = tmp_path / "scan.html"
    out = poisonlab("scan-data", "--dataset", "digits", "--features", feats, "--detectors", "spectral,knn_label",
                    "--out-dir", tmp_path / "scan", "--report", html, "--top", "8", "--no-fail")
    assert out.code == 0, out.output
    text = html.read_text()
    assert _kind(html) == "scan"
    assert text.count('alt="sample digits') == 8  # the top samples, as thumbnails
    assert "No ground truth" in text and 'id="scan"' in text
    scores = json.loads((tmp_path / "scan" / "scores.json").read_text())
    assert f">{scores['n_quarantined']:,}</span>" in text


def test_scan_model_with_report(tmp_path):
    weights = tmp_path / "m.safetensors"
    assert poisonlab("train", "--dataset", "digits", "--architecture", "mlp", "--epochs", "2",
                     "--out", weights).code == 0
    html = tmp_path / "model.html"
    out = poisonlab("scan-model", weights, "--dataset", "digits", "--n-clean", "100", "--epochs", "1",
                    "--out-dir", tmp_path / "sm", "--report", html, "--no-fail")
    assert out.code == 0, out.output
    text = html.read_text()
    report = json.loads((tmp_path / "sm" / "report.json").read_text())
    assert _kind(html) == "model_scan"
    assert text.count('alt="reversed trigger of class') == 10
    for c, index in enumerate(report["anomaly_index"]):
        assert f'data-key="/results/anomaly_index/{c}" data-value="{json.dumps(index)}"' in text
    assert_one_line_error(poisonlab("scan-model", weights, "--dataset", "digits", "--out-dir", tmp_path / "x",
                                    "--report", weights), contains="input")


@pytest.mark.parametrize("command", ["run", "scan-data", "scan-model"])
def test_report_option_is_documented(command):
    out = poisonlab(command, "--help", columns=200)
    assert "--report" in out.stdout and "self-contained HTML" in out.stdout
