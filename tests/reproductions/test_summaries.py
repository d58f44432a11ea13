"""Pass rules: each summarize() gives the committed verdicts on the committed per-seed data,
and the rules that matter are pinned by hand-made seeds."""

import json
from pathlib import Path

import pytest

from poisonlab.reproductions import REPRODUCTIONS, SUITE_SEEDS, id_order, seed_note
from poisonlab.reproductions.common import mean_std

DOCS = Path(__file__).resolve().parents[2] / "docs" / "results"


@pytest.mark.parametrize("rid", sorted(REPRODUCTIONS, key=id_order))
def test_summaries_give_the_committed_verdicts(rid):
    """A strong regression test: the moved pass rules, on the recorded seeds, say exactly what
    the committed record says (verdict text, pass/fail and every measured statistic)."""
    if not (DOCS / f"{rid}.json").is_file():
        pytest.skip(f"{rid} has no committed result yet (docs/reproductions.md says why)")
    record = json.loads((DOCS / f"{rid}.json").read_text())
    out = REPRODUCTIONS[rid].summarize(record["per_seed"])
    assert bool(out["passed"]) == record["passed"]
    assert seed_note(out["verdict"], len(record["per_seed"])) == record["verdict"]
    # a verdict resting on fewer seeds than the suite asks says so, in its text and its JSON
    assert record.get("fewer_seeds_than_suite", False) == (len(record["per_seed"]) < SUITE_SEEDS)
    assert json.dumps(out["measured"], sort_keys=True) == json.dumps(record["measured"], sort_keys=True)


def test_mean_std_hand_computed():
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "min": 1.0, "max": 3.0, "n": 2}
    assert mean_std([0.5])["std"] == 0.0


def _r10_run(asr: dict[str, float]) -> dict:
    """One seed's R10 record: every run at ASR 0.5 unless given, accuracy unchanged (0.98)."""
    from poisonlab.reproductions import r10_text_backdoors as rt

    keys = [f"{a}_{r:g}" for a in rt.R10_ATTACKS for r in rt.R10_RATES]
    keys += [f"badword{k}_0.01" for k in rt.R10_INSERT_SWEEP if k != rt.R10_INSERTS]

    def row(pipe):
        return {"clean_accuracy": 0.98, **{k: {"attack_success_rate": asr.get(f"{pipe} {k}", 0.5),
                                                "clean_accuracy": 0.98} for k in keys}}

    return {"sms": {p: row(p) for p in rt.R10_PIPELINES},
            "sst2": {p: row(p) for p in ("tfidf-logreg", "text-bag")}}


def test_r10_verdict_needs_both_trigger_families_linear_and_torch():
    from poisonlab.reproductions.r10_text_backdoors import summarize

    linear = {"tfidf-logreg badword5_0.01": 0.96, "tfidf-logreg addsent_0.01": 0.97}
    out = summarize([_r10_run({**linear, "text-cnn addsent_0.01": 1.0})])
    assert not out["passed"] and "torch missed" in out["verdict"]  # no torch model reaches it with rare words
    out = summarize([_r10_run({**linear, "text-cnn addsent_0.01": 1.0, "text-bag badword8_0.01": 0.99})])
    assert out["passed"] and "(target first reached at x5)" in out["verdict"]
    assert "text-bag: rare words x3 50.0%, x5 50.0%, x8 99.0% (target first reached at x8)" in out["verdict"]
    # a clean-accuracy drop of more than a point does not count as reaching it
    run = _r10_run({**linear, "text-cnn addsent_0.01": 1.0, "text-bag badword8_0.01": 0.99})
    run["sms"]["tfidf-logreg"]["addsent_0.01"]["clean_accuracy"] = 0.965
    assert not summarize([run])["passed"]


def test_r11_is_judged_on_the_papers_normal_boundary_with_the_measured_frr_beside_it():
    from poisonlab.reproductions.r11_strip import R11_FRRS, summarize

    def seed(far_q, far_n, frr_n):
        return {"frr": {f"{f:g}": {"far": far_q, "frr_measured": f} for f in R11_FRRS},
                "frr_normal_boundary": {f"{f:g}": {"far": far_n, "frr_measured": frr_n} for f in R11_FRRS}}

    ok = summarize([seed(0.03, 0.01, 0.02), seed(0.03, 0.02, 0.02)])
    assert ok["passed"] and "FAR 1.50% (target <= 2%), FRR measured 2.00%" in ok["verdict"]
    assert "empirical 1% quantile: FAR 3.00%" in ok["verdict"]
    assert not summarize([seed(0.01, 0.03, 0.01)])["passed"]
    old = summarize([{"frr": seed(0.01, 0, 0)["frr"]}])  # records from before the normal rule
    assert old["passed"] and "target <= 2%" in old["verdict"]


def test_r4_verdict_reads_30_percent_at_40_over_255():
    from poisonlab.reproductions import r04_sig_cifar10 as r4

    def seed(asr40):
        by = {str(d): (asr40 if d == 40 else 0.1) for d in r4.R4_TEST_DELTAS}
        return {"fractions": {f"{f:g}": {"asr_by_test_delta": by, "clean_accuracy": 0.7} for f in r4.R4_FRACTIONS},
                "clean_model": {"asr_by_test_delta": {str(d): 0.02 for d in r4.R4_TEST_DELTAS}, "clean_accuracy": 0.7}}

    assert r4.summarize([seed(0.9), seed(0.8)])["passed"]
    assert not r4.summarize([seed(0.9), seed(0.6)])["passed"]


def test_r2_needs_asr_to_rise_with_the_rate():
    from poisonlab.reproductions.r02_badnets_rate_sweep import R2_RATES, summarize

    def seed(asrs):
        return {"rates": {f"{r:g}": {"attack_success_rate": a, "clean_accuracy": 0.99} for r, a in zip(R2_RATES, asrs)}}

    assert summarize([seed((0.3, 0.9, 0.895, 0.99, 1.0))])["passed"]  # a 0.5-point dip is noise
    assert not summarize([seed((0.3, 0.9, 0.8, 0.99, 1.0))])["passed"]
    assert not summarize([seed((0.5, 0.5, 0.5, 0.5, 0.5))])["passed"]


def test_r8_trains_with_the_papers_sgd():
    from poisonlab.reproductions.r08_gradient_matching import R8_EPOCHS, r8_config

    cfg = r8_config(7).validate()
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.lr_schedule) == ("sgd", 0.05, 0.9, 5e-4, "step")
    assert (cfg.epochs, cfg.seed) == (R8_EPOCHS, 7)
