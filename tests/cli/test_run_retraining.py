"""`poisonlab run` on a retraining scenario prints one row per round and writes the record."""

import json

from typer.testing import CliRunner

from poisonlab.cli.main import app

runner = CliRunner()

SCENARIO = """
name: rt-digits
dataset: digits
retraining: {rounds: 2, honest_contributors: 5, samples_per_contributor: 10, group_size: 2,
             target_class: 1, flip_to: 7, min_verified: 5}
"""


def test_a_retraining_scenario_prints_its_rounds_and_the_defences_decisions(tmp_path):
    path = tmp_path / "rt.yaml"
    path.write_text(SCENARIO)
    r = runner.invoke(app, ["run", str(path), "--out-dir", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "rt-digits: continuous retraining" in r.output
    assert "2/2 group accounts rejected" in r.output and "reject 2" in r.output
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    assert [x["round"] for x in record["results"]["retraining"]["arms"]["defended"]] == [0, 1, 2]


def test_several_seeds_print_one_row_per_seed_with_the_last_round(tmp_path):
    path = tmp_path / "rt.yaml"
    path.write_text(SCENARIO + "seeds: [0, 1]\n")
    r = runner.invoke(app, ["run", str(path), "--out-dir", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "rt-digits: 2 continuous-retraining cells, last round" in r.output
    rows = [ln for ln in r.output.splitlines() if "seed=" in ln and "│" in ln]
    assert len(rows) == 2 and all(ln.rstrip(" │").endswith("2/2") for ln in rows)  # both accounts rejected
