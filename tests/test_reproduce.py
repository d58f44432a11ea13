"""The reproduction machinery: seeds, summaries, JSON and the Markdown table."""

import json

import pytest
from typer.testing import CliRunner

from poisonlab.cli.main import app
from poisonlab.evaluation import reproduce as rep
from poisonlab.evaluation.reproduce import mean_std, run_reproduction

runner = CliRunner()


@pytest.fixture
def dummy(monkeypatch):
    monkeypatch.setattr(rep, "REPRODUCTIONS", dict(rep.REPRODUCTIONS))

    def summarize(runs):
        acc = mean_std([r["acc"] for r in runs])
        return {"measured": {"accuracy": acc}, "passed": acc["mean"] > 0.5, "verdict": f"{acc['mean']:.2f}"}

    rep.reproduction("R900", title="dummy", setting="s", paper="p", target="t", summarize=summarize)(
        lambda seed, root, progress: {"acc": 0.6 + 0.1 * seed})
    rep.reproduction("R901", title="failing", setting="s", paper="p", target="t", summarize=summarize)(
        lambda seed, root, progress: {"acc": 0.1})


def test_mean_std_hand_computed():
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "min": 1.0, "max": 3.0, "n": 2}
    assert mean_std([0.5])["std"] == 0.0


def test_run_reproduction_record(dummy):
    r = run_reproduction("R900", seeds=2)
    assert [s["seed"] for s in r["per_seed"]] == [0, 1]
    assert r["measured"]["accuracy"]["mean"] == pytest.approx(0.65) and r["passed"]
    assert {"paper", "target", "setting", "environment", "seconds"} <= set(r)
    with pytest.raises(ValueError, match="unknown reproduction"):
        run_reproduction("R999")
    with pytest.raises(ValueError, match="seeds must be a positive int"):
        run_reproduction("R900", seeds=0)


def test_cli_writes_json_and_table_of_everything_in_folder(dummy, tmp_path):
    r = runner.invoke(app, ["reproduce", "R900", "--seeds", "2", "--out-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "R900.json").read_text())
    assert rec["command"] == "poisonlab reproduce R900 --seeds 2"
    r = runner.invoke(app, ["reproduce", "R901", "--seeds", "1", "--out-dir", str(tmp_path)])
    assert r.exit_code == 1, "a missed target fails the command"
    table = (tmp_path / "table.md").read_text()
    assert "| R900 | dummy |" in table and "| R901 | failing |" in table and "MISS" in table


def test_registered_suite_has_the_issue_ids():
    assert {"R1", "R2", "R14", "R19"} <= set(rep.REPRODUCTIONS)


def test_run_reproduction_hands_over_every_finished_seed(monkeypatch):
    """A stopped long run keeps what it measured: on_seed gets the record after each seed."""
    import poisonlab.evaluation.reproduce as rep

    fake = rep.Reproduction("RX", "t", "s", "p", "target", run=lambda seed, root, progress: {"v": float(seed)},
                            summarize=lambda runs: {"measured": {"v": rep.mean_std([r["v"] for r in runs])},
                                                    "passed": True})
    monkeypatch.setitem(rep.REPRODUCTIONS, "RX", fake)
    seen = []
    final = rep.run_reproduction("RX", seeds=3, on_seed=lambda r: seen.append((r["seeds"], r["partial"])))
    assert seen == [(1, True), (2, True), (3, False)]
    assert final["seeds"] == 3 and final["measured"]["v"]["mean"] == 1.0
