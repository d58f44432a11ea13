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


def _r10_run(asr: dict[str, float]) -> dict:
    """One seed's R10 record: every run at ASR 0.5 unless given, accuracy unchanged (0.98)."""
    from poisonlab.evaluation import reproduce_text as rt

    keys = [f"{a}_{r:g}" for a in rt.R10_ATTACKS for r in rt.R10_RATES]
    keys += [f"badword{k}_0.01" for k in rt.R10_INSERT_SWEEP if k != rt.R10_INSERTS]
    row = lambda pipe: {"clean_accuracy": 0.98, **{k: {"attack_success_rate": asr.get(f"{pipe} {k}", 0.5),
                                                       "clean_accuracy": 0.98} for k in keys}}
    return {"sms": {p: row(p) for p in rt.R10_PIPELINES},
            "sst2": {p: row(p) for p in ("tfidf-logreg", "text-bag")}}


def test_r10_verdict_needs_both_trigger_families_linear_and_torch():
    from poisonlab.evaluation.reproduce_text import _summarize_r10

    linear = {"tfidf-logreg badword5_0.01": 0.96, "tfidf-logreg addsent_0.01": 0.97}
    out = _summarize_r10([_r10_run({**linear, "text-cnn addsent_0.01": 1.0})])
    assert not out["passed"] and "torch missed" in out["verdict"]  # no torch model reaches it with rare words
    out = _summarize_r10([_r10_run({**linear, "text-cnn addsent_0.01": 1.0, "text-bag badword8_0.01": 0.99})])
    assert out["passed"] and "(target first reached at x5)" in out["verdict"]
    assert "text-bag: rare words x3 50.0%, x5 50.0%, x8 99.0% (target first reached at x8)" in out["verdict"]
    # a clean-accuracy drop of more than a point does not count as reaching it
    run = _r10_run({**linear, "text-cnn addsent_0.01": 1.0, "text-bag badword8_0.01": 0.99})
    run["sms"]["tfidf-logreg"]["addsent_0.01"]["clean_accuracy"] = 0.965
    assert not _summarize_r10([run])["passed"]


def test_text_backdoor_grid_runs_every_setting():
    import numpy as np

    from poisonlab.data.dataset import Dataset, Splits
    from poisonlab.evaluation.reproduce_text import text_backdoor_grid

    rng = np.random.default_rng(0)
    ham, spam = ["see you at lunch", "call me later ok", "home soon"], ["win cash prize now", "free entry txt"]
    y = rng.integers(0, 2, 300)
    X = np.array([rng.choice(spam if t else ham) + f" w{i % 7}" for i, t in enumerate(y)], dtype=object)
    ds = lambda s: Dataset(X=X[s], y=y[s], classes=("ham", "spam"), modality="text", ids=np.arange(len(y))[s])
    out = text_backdoor_grid(Splits(ds(slice(0, 200)), ds(slice(200, None))), 0, 0, rates=(0.05,),
                             pipelines=("tfidf-logreg",), insert_sweep=(1, 3))
    assert set(out["tfidf-logreg"]) == {"clean_accuracy", "badword_0.05", "addsent_0.05", "badword1_0.05"}
    assert out["tfidf-logreg"]["badword_0.05"]["n_poison"] == 10


def test_select_tfidf_picks_by_clean_cross_validation():
    import numpy as np

    from poisonlab.evaluation.reproduce_text import TFIDF_GRID, select_tfidf

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = np.array([("win cash prize" if t else "see you at lunch") + f" u{i}" for i, t in enumerate(y)], dtype=object)
    out = select_tfidf(X, y, 0)
    assert out["min_df"] in TFIDF_GRID["min_df"] and out["C"] in TFIDF_GRID["C"]
    assert out["cv_accuracy"] == 1.0
    assert select_tfidf(X, y, 0) == out  # seeded folds: the same choice again


def test_r11_is_judged_on_the_papers_normal_boundary_with_the_measured_frr_beside_it():
    def seed(far_q, far_n, frr_n):
        return {"frr": {f"{f:g}": {"far": far_q, "frr_measured": f} for f in rep.R11_FRRS},
                "frr_normal_boundary": {f"{f:g}": {"far": far_n, "frr_measured": frr_n} for f in rep.R11_FRRS}}

    ok = rep._summarize_r11([seed(0.03, 0.01, 0.02), seed(0.03, 0.02, 0.02)])
    assert ok["passed"] and "FAR 1.50% (target <= 2%), FRR measured 2.00%" in ok["verdict"]
    assert "empirical 1% quantile: FAR 3.00%" in ok["verdict"]
    miss = rep._summarize_r11([seed(0.01, 0.03, 0.01)])
    assert not miss["passed"]
    old = rep._summarize_r11([{"frr": seed(0.01, 0, 0)["frr"]}])  # records from before the normal rule
    assert old["passed"] and "target <= 2%" in old["verdict"]


def test_r4_verdict_reads_30_percent_at_40_over_255():
    from poisonlab.evaluation import reproduce_attacks as ra

    def seed(asr40):
        by = {str(d): (asr40 if d == 40 else 0.1) for d in ra.R4_TEST_DELTAS}
        return {"fractions": {f"{f:g}": {"asr_by_test_delta": by, "clean_accuracy": 0.7} for f in ra.R4_FRACTIONS},
                "clean_model": {"asr_by_test_delta": {str(d): 0.02 for d in ra.R4_TEST_DELTAS}, "clean_accuracy": 0.7}}

    assert ra._summarize_r4([seed(0.9), seed(0.8)])["passed"]
    assert not ra._summarize_r4([seed(0.9), seed(0.6)])["passed"]


def test_progress_prints_each_finished_target():
    import io

    from rich.console import Console

    from poisonlab.cli.progress import training_progress

    buf = io.StringIO()
    with training_progress(Console(file=buf, width=200)) as progress:
        progress("R8", "target", {"done": 3, "total": 10, "hit": True, "p_adversarial": 0.92065})
    assert "R8: target 3/10, hit True, p_adversarial 0.921" in buf.getvalue()


def test_r8_trains_with_the_papers_sgd():
    from poisonlab.evaluation.reproduce_attacks import R8_EPOCHS, _r8_config

    cfg = _r8_config(7).validate()
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.lr_schedule) == ("sgd", 0.05, 0.9, 5e-4, "step")
    assert (cfg.epochs, cfg.seed) == (R8_EPOCHS, 7)
