"""`poisonlab ledger`, `data snapshot|diff|quarantine`, `model register|promote|rollback|list`
and `run --ledger`, through the console script as a shell runs them."""

import json
import sqlite3

import numpy as np

from tests.cli.cli_helpers import assert_one_line_error, poisonlab


def _npz(path, X, y, **extra):
    np.savez(path, X=X, y=y, **extra)
    return path


def test_snapshot_diff_verify_and_log(tmp_path):
    led = tmp_path / "l.db"
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 3)).astype(np.float32), np.arange(100) % 2
    a = _npz(tmp_path / "a.npz", X, y)
    y2 = y.copy()
    y2[:4] = 1 - y2[:4]
    b = _npz(tmp_path / "b.npz", X, y2, contributor=np.array(["eve"] * 4 + ["bob"] * 96))
    r = poisonlab("ledger", "init", "--ledger", led)
    assert r.code == 0 and "schema version 2" in r.stdout
    r = poisonlab("data", "snapshot", a, "--source", "web", "--contributor", "bob", "--ledger", led)
    assert r.code == 0 and "snapshot a (id 1): 100 samples" in r.stdout
    assert poisonlab("data", "snapshot", b, "--source", "web", "--contributor", "bob", "--ledger", led).code == 0
    r = poisonlab("data", "diff", "a", "b", "--ledger", led, "--json", tmp_path / "d.json")
    assert r.code == 0 and "4 relabelled" in r.stdout and "eve" in r.stdout and "TVD" in r.stdout
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["relabelled_by_contributor"] == {"eve": 4} and d["n_unchanged"] == 96
    r = poisonlab("data", "diff", "a", "b", "--ledger", led, "--json", tmp_path / "d.json")
    assert_one_line_error(r, contains="exists")
    r = poisonlab("ledger", "verify", "--ledger", led)
    assert r.code == 0 and "OK" in r.stdout and "200 samples" in r.stdout
    head = r.stdout.split("hash ")[-1].split()[0]
    assert poisonlab("ledger", "verify", "--ledger", led, "--expect-head", head).code == 0
    r = poisonlab("ledger", "log", "--ledger", led, "--limit", "3")
    assert r.code == 0 and "snapshot b" in r.stdout
    con = sqlite3.connect(led)
    with con:
        con.execute("UPDATE snapshots SET n_samples = 99 WHERE id = 1")
    con.close()
    r = poisonlab("ledger", "verify", "--ledger", led, "--json", tmp_path / "v.json")
    assert r.code == 1 and "TAMPERED" in r.stderr and "snapshots row id 1 (seq 2): hash mismatch" in r.stderr
    assert json.loads((tmp_path / "v.json").read_text())["problem"]["table"] == "snapshots"


def test_bad_input_is_one_line(tmp_path):
    led = tmp_path / "l.db"
    r = poisonlab("ledger", "verify", "--ledger", led)
    assert_one_line_error(r, contains="does not exist")
    poisonlab("ledger", "init", "--ledger", led)
    assert_one_line_error(poisonlab("data", "diff", "x", "y", "--ledger", led), contains="no snapshot named 'x'")
    assert_one_line_error(poisonlab("ledger", "init", "--ledger", "postgresql+psycopg://me:pw@127.0.0.1:1/x"),
                          contains=("127.0.0.1:1/x", "***"))
    r = poisonlab("data", "snapshot", tmp_path / "none.npz", "--source", "s", "--contributor", "c", "--ledger", led)
    assert_one_line_error(r, contains="does not exist")
    assert_one_line_error(poisonlab("model", "register", tmp_path / "m.safetensors", "--ledger", led),
                          contains="does not exist")
    assert_one_line_error(poisonlab("model", "rollback", "--ledger", led), contains="no model was promoted")


def test_quarantine_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("POISONLAB_LEDGER", str(tmp_path / "env.db"))
    assert poisonlab("data", "quarantine", "add", "contributor:eve", "--reason", "new").code == 0
    r = poisonlab("data", "quarantine", "list")
    assert r.code == 0 and "contributor:eve" in r.stdout and "1 in quarantine" in r.stdout
    assert poisonlab("data", "quarantine", "reject", "contributor:eve", "--reason", "poison").code == 0
    assert "nothing is in quarantine" in poisonlab("data", "quarantine", "list").stdout
    assert_one_line_error(poisonlab("data", "quarantine", "release", "contributor:eve"),
                          contains="not in quarantine")


def test_model_commands(tmp_path):
    from tests.provenance.test_models import save_tiny_model

    led = tmp_path / "l.db"
    for i in range(2):
        save_tiny_model(tmp_path / f"m{i}.safetensors", seed=i)
        r = poisonlab("model", "register", tmp_path / f"m{i}.safetensors", "--ledger", led)
        assert r.code == 0 and f"model {i + 1}:" in r.stdout
    from poisonlab.provenance.ledger import Ledger
    from poisonlab.provenance.models import record_gate

    with Ledger.open(led) as ledger:
        record_gate(ledger, 1, True, {})
    assert poisonlab("model", "promote", "2", "--ledger", led).code == 0
    r = poisonlab("model", "rollback", "--ledger", led)
    assert r.code == 0 and "rolled back to model 1" in r.stdout
    r = poisonlab("model", "list", "--ledger", led, columns=200)
    assert r.code == 0 and "passed" in r.stdout and "yes" in r.stdout


def test_run_records_its_manifest_and_events(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: tiny\ndataset: digits\nmodel: {architecture: mlp, train: {epochs: 1}}\n")
    led = tmp_path / "l.db"
    r = poisonlab("run", scenario, "--out-dir", tmp_path / "out", "--ledger", led)
    assert r.code == 0, r.output
    assert "ledger: run tiny-" in r.stdout
    from poisonlab.provenance.ledger import Ledger

    with Ledger.open(led) as ledger:
        (run,) = ledger.rows("runs")
        assert json.loads(run["scenario_json"])["name"] == "tiny" and run["seed"] == 0
        assert "versions" in json.loads(run["environment_json"])
        events = ledger.rows("events")
        kinds = [e["kind"] for e in events]
        assert "StepStarted" in kinds and "StepFinished" in kinds and kinds[-1] == "Note"
        assert all(e["run_id"] == run["run_id"] for e in events)
        assert ledger.verify().ok
