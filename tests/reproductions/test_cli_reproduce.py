"""``poisonlab reproduce``: JSON per ID after every seed, the table of the folder, --list,
the default cache folder, and the per-target lines R7/R8 print."""

import json

from typer.testing import CliRunner

import poisonlab.reproductions as reproductions
from poisonlab.cli.main import app
from poisonlab.reproductions import Reproduction

runner = CliRunner()


def test_writes_json_and_a_table_of_everything_in_the_folder(stand_ins, tmp_path):
    r = runner.invoke(app, ["reproduce", "R900", "--seeds", "2", "--out-dir", str(tmp_path), "--threads", "1"])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "R900.json").read_text())
    assert rec["command"] == "poisonlab reproduce R900 --seeds 2"
    assert rec["kind"] == "reproduction" and rec["seeds"] == 2 and not rec["partial"] and rec["fingerprint"]
    from pathlib import Path

    assert stand_ins[-1].cache_dir == Path("poisonlab-out/cache") and stand_ins[-1].threads == 1
    r = runner.invoke(app, ["reproduce", "R901", "--seeds", "1", "--out-dir", str(tmp_path),
                            "--cache-dir", str(tmp_path / "models")])
    assert r.exit_code == 2 and "--force" in r.output  # table.md of the first run is not replaced silently
    r = runner.invoke(app, ["reproduce", "R901", "--seeds", "1", "--out-dir", str(tmp_path),
                            "--cache-dir", str(tmp_path / "models"), "--force"])
    assert r.exit_code == 3, "a missed target fails the command (3: something flagged / missed)"
    table = (tmp_path / "table.md").read_text()
    assert "| R900 | dummy |" in table and "| R901 | failing |" in table and "MISS" in table


def test_the_json_is_written_after_every_seed(stand_ins, tmp_path, monkeypatch):
    """Stopped after seed 1 of 3, the folder still holds seed 0's record."""
    from poisonlab.exceptions import DataError

    calls = []

    def run(seed, ctx):
        if seed == 1:
            raise DataError("the data went away")
        calls.append(seed)
        return {"acc": 0.9}

    monkeypatch.setitem(reproductions.REPRODUCTIONS, "R903", Reproduction(
        "R903", "stopped", "s", "p", "t", run=run, summarize=reproductions.REPRODUCTIONS["R900"].summarize))
    r = runner.invoke(app, ["reproduce", "R903", "--seeds", "3", "--out-dir", str(tmp_path)])
    assert r.exit_code == 2 and "the data went away" in r.output
    rec = json.loads((tmp_path / "R903.json").read_text())
    assert rec["seeds"] == 1 and rec["partial"] and calls == [0]


def test_list_shows_minutes_data_and_target(stand_ins):
    r = runner.invoke(app, ["reproduce", "--list"], terminal_width=250)
    assert r.exit_code == 0
    line = next(ln for ln in r.output.splitlines() if "R900" in ln)
    assert "2.5" in line and "digits" in line and "dummy" in line
    r1 = next(ln for ln in r.output.splitlines() if " R1 " in ln)
    assert "mnist" in r1 and "16.0" in r1
    r = runner.invoke(app, ["reproduce", "R99"])
    assert r.exit_code == 2 and "unknown reproduction" in r.output


def test_each_finished_target_is_printed():
    """R7 and R8 report each target of their outer loop as a TargetFinished event."""
    import io

    from rich.console import Console

    from poisonlab.cli.progress import event_progress
    from poisonlab.runs.events import TargetFinished

    buf = io.StringIO()
    with event_progress(Console(file=buf, width=200)) as emit:
        emit(TargetFinished(label="R8", done=3, total=10, info={"hit": True, "p_adversarial": 0.92065}))
    assert "R8: target 3/10, hit True, p_adversarial 0.921" in buf.getvalue()
