"""Federated records in the HTML report: a grid's aggregator x attack heat map, and R20-style
reproduction records with a nested accuracy grid."""

import re

from poisonlab.reports import build_html
from poisonlab.runs import Runner, Scenario


def test_a_federated_grid_renders_an_aggregator_by_attack_heat_map():
    s = Scenario.model_validate({
        "name": "fed-grid", "dataset": "digits", "model": {"architecture": "mlp", "params": {"hidden": [16]}},
        "federation": {"clients": 6, "rounds": 2, "malicious": 1},
        "sweep": {"params": {"federation.aggregator": [{"name": "fedavg"}, {"name": "median"}],
                             "federation.attack": [None, {"name": "sign_flip"}]}}})
    html = build_html(Runner().run(s))
    assert "Accuracy by aggregator and attack" in html
    assert len(re.findall(r"data:image/png;base64,", html)) == 1
    for name in ("aggregator=fedavg attack=none", "aggregator=median attack=sign_flip"):
        assert name in html


def test_a_reproduction_with_an_accuracy_grid_gets_the_heat_map():
    stat = {"mean": 0.9, "std": 0.01, "min": 0.89, "max": 0.91, "n": 3}
    rec = {"kind": "reproduction", "id": "R20", "title": "t", "passed": True, "verdict": "ok", "seeds": 3,
           "measured": {"accuracy": {"mean": {"none": stat, "ipm": stat}, "krum": {"none": stat, "ipm": stat}}},
           "results": {"measured": {}, "passed": True, "verdict": "ok"}}
    html = build_html(rec)
    assert "R20: final accuracy by aggregator and attack" in html


def test_a_grid_whose_row_is_named_mean_is_not_taken_for_a_statistic():
    """R20's accuracy grid has a row named "mean" (the FedAvg rule): the Markdown table and the
    HTML view must read it as a row of statistics, not as one statistic."""
    from poisonlab.reports import reproduction_table

    stat = {"mean": 0.9, "std": 0.01, "min": 0.89, "max": 0.91, "n": 3}
    rec = {"kind": "reproduction", "id": "R20", "title": "t", "paper": "p", "target": "t", "passed": False,
           "verdict": "v", "seeds": 3, "seconds": 60.0,
           "measured": {"accuracy": {"mean": {"none": stat}, "krum": {"none": stat}}},
           "results": {"measured": {}, "passed": False, "verdict": "v"}}
    assert "mean: {none: 90.00% ± 1.00%}" in reproduction_table([rec])
    assert "R20: final accuracy by aggregator and attack" in build_html(rec)
