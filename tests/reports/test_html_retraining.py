"""Continuous-retraining records in the HTML report: the per-round targeted error and accuracy of
the honest, undefended and defended arms, for one run and for R25's seeds."""

import json
import re
from pathlib import Path

from poisonlab.reports import build_html
from poisonlab.runs import Runner, Scenario

DOCS = Path(__file__).resolve().parents[2] / "docs" / "results"


def test_a_retraining_run_gets_the_per_round_plot_and_table():
    s = Scenario.model_validate({"name": "rt", "dataset": "digits",
                                 "retraining": {"rounds": 2, "honest_contributors": 5, "samples_per_contributor": 10,
                                                "group_size": 2, "target_class": 1, "flip_to": 7, "min_verified": 5}})
    record = Runner().run(s)
    html = build_html(record)
    assert "Continuous retraining" in html and "held in quarantine" in html
    assert len(re.findall(r"data:image/png;base64,", html)) == 1
    arms = record["results"]["retraining"]["arms"]
    assert "/results/retraining/arms/undefended/2/targeted_error" in html
    assert len(arms["defended"]) == 3


def test_r25s_record_gets_the_mean_curves():
    record = json.loads((DOCS / "R25.json").read_text())
    html = build_html(record)
    assert "targeted error and overall accuracy per retraining round" in html


def test_a_grid_of_retraining_seeds_gets_the_mean_curves_and_a_row_per_seed():
    s = Scenario.model_validate({"name": "rt-grid", "dataset": "digits", "seeds": [0, 1],
                                 "retraining": {"rounds": 2, "honest_contributors": 5, "samples_per_contributor": 10,
                                                "group_size": 2, "target_class": 1, "flip_to": 7, "min_verified": 5}})
    record = Runner().run(s)
    assert record["kind"] == "grid"
    html = build_html(record)
    assert "Continuous retraining: rt-grid" in html and "mean over 2 seed(s)" in html
    assert len(re.findall(r"data:image/png;base64,", html)) == 1
    assert "/results/cells/1/results/retraining/arms/defended/2/targeted_error" in html
