"""run_reproduction: seeds, the run record, events, the per-seed hand-over, the cache folder."""

import pytest

import poisonlab.reproductions as reproductions
from poisonlab.reproductions import Reproduction, run_reproduction
from poisonlab.runs.events import SeedFinished
from poisonlab.runs.record import RECORD_VERSION, fingerprint

from .conftest import summarize_accuracy


def test_record_is_a_run_record_with_the_suites_fields(stand_ins):
    r = run_reproduction("R900", seeds=2, threads=1)
    assert [s["seed"] for s in r["per_seed"]] == [0, 1]
    assert r["measured"]["accuracy"]["mean"] == pytest.approx(0.65) and r["passed"] and not r["partial"]
    assert {"id", "title", "setting", "paper", "target", "seeds", "per_seed", "measured", "passed", "verdict",
            "seconds"} <= set(r)
    assert r["kind"] == "reproduction" and r["record_version"] == RECORD_VERSION
    env = r["environment"]
    assert env["threads"] == 1 and "numpy" in env["versions"] and "argv" in env
    assert r["results"]["passed"] is True and r["scenario"]["reproduction"] == "R900"
    # the fingerprint covers what was measured, not when or how fast
    assert r["fingerprint"] == fingerprint({"scenario": r["scenario"], "results": r["results"],
                                            **{k: r[k] for k in ("id", "title", "setting", "paper", "target",
                                                                 "seeds", "per_seed", "measured", "passed",
                                                                 "verdict", "seconds", "partial", "suite_seeds",
                                                                 "fewer_seeds_than_suite")}})
    again = run_reproduction("R900", seeds=2, threads=1)
    assert again["fingerprint"] == r["fingerprint"] and len(again["timings"]["per_seed"]) == 2


def test_the_table_renders_new_and_old_records(stand_ins):
    import json
    from pathlib import Path

    from poisonlab.reports import reproduction_table

    old = json.loads((Path(__file__).resolve().parents[2] / "docs" / "results" / "R9.json").read_text())
    md = reproduction_table([old, run_reproduction("R900", seeds=1)])
    assert "| R9 | Label flipping" in md and "| R900 | dummy |" in md and "PASS: 0.60" in md


def test_bad_arguments_are_one_line_errors(stand_ins):
    with pytest.raises(ValueError, match="unknown reproduction 'R999'"):
        run_reproduction("R999")
    with pytest.raises(ValueError, match="seeds must be a positive int"):
        run_reproduction("R900", seeds=0)
    with pytest.raises(ValueError, match="threads must be a positive int"):
        run_reproduction("R900", threads=0)


def test_on_seed_gets_the_record_after_every_seed_and_events_follow(stand_ins):
    """A stopped long run keeps what it measured: on_seed gets the record after each seed."""
    seen, events = [], []
    final = run_reproduction("R900", seeds=3, on_seed=lambda r: seen.append((r["seeds"], r["partial"])),
                             emit=events.append)
    assert seen == [(1, True), (2, True), (3, False)]
    assert final["seeds"] == 3 and final["measured"]["accuracy"]["mean"] == pytest.approx(0.7)
    finished = [e for e in events if isinstance(e, SeedFinished)]
    assert [(e.label, e.seed, e.seeds) for e in finished] == [("R900", 0, 3), ("R900", 1, 3), ("R900", 2, 3)]


def test_without_a_cache_dir_a_temporary_one_lives_for_the_run_only(stand_ins, tmp_path):
    run_reproduction("R900", seeds=2)
    ctx0, ctx1 = stand_ins
    assert ctx0 is ctx1, "one context for all seeds of a run"
    assert not ctx0.cache_dir.exists(), "the temporary cache folder is removed at the end"
    run_reproduction("R900", seeds=1, cache_dir=tmp_path / "cache", data_dir=tmp_path)
    ctx = stand_ins[-1]
    assert ctx is not ctx0, "nothing is shared between runs"
    assert ctx.cache_dir == tmp_path / "cache" and ctx.data_dir == tmp_path


def test_threads_are_fixed_for_the_run_and_restored(stand_ins, monkeypatch):
    import torch

    before = torch.get_num_threads()
    seen = []
    monkeypatch.setitem(reproductions.REPRODUCTIONS, "R902", Reproduction(
        "R902", "t", "s", "p", "t", summarize=summarize_accuracy,
        run=lambda seed, ctx: seen.append((torch.get_num_threads(), ctx.threads)) or {"acc": 1.0}))
    run_reproduction("R902", seeds=1, threads=2)
    assert seen == [(2, 2)] and torch.get_num_threads() == before
