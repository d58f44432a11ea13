"""``poisonlab list [KIND]``: the registry from the command line."""

import re

from typer.testing import CliRunner

from poisonlab import registry
from poisonlab.cli.main import app

runner = CliRunner()


def _invoke(*args):
    # a wide terminal, so that rich does not fold names and constraints
    return runner.invoke(app, ["list", *args], env={"COLUMNS": "250"}, terminal_width=250)


def test_list_detectors_shows_stage_unit_and_declared_parameters():
    r = _invoke("detector")
    assert r.exit_code == 0, r.output
    for e in registry.entries("detector"):
        assert re.search(rf"\b{re.escape(e.name)}\b.*\bdetector\b.*\b{e.stage}\b.*\b{e.unit}\b", r.output), e.name
    # parameters with defaults and what they must be
    assert "threshold_rule='quantile': one of ('quantile', 'per_class')" in r.output
    assert "false_positive_rate=0.01: in (0, 1)" in r.output
    assert "random_state=0: None, an int >= 0 or a numpy Generator" in r.output


def test_list_attacks_accepts_the_plural():
    r = _invoke("attacks")
    assert r.exit_code == 0, r.output
    assert "badnets" in r.output and "poison_rate=0.1: in (0, 1] or None" in r.output
    assert "validation_poisoning" in r.output and "training" in r.output


def test_list_datasets_one_line_each_without_parameters():
    r = _invoke("dataset")
    assert r.exit_code == 0, r.output
    names = list(registry.available("dataset"))
    lines = [ln for ln in r.output.splitlines() if any(f" {n} " in ln for n in names)]
    assert len(lines) == len(names)
    assert "parameters" not in r.output


def test_list_everything_and_the_empty_trainer_kind():
    r = _invoke()
    assert r.exit_code == 0, r.output
    assert "strip" in r.output and "digits" in r.output and "R1" in r.output
    r = _invoke("trainer")
    assert r.exit_code == 0, r.output
    trainers = registry.entries("trainer")
    if trainers:  # trainers arrive with the training-stage defenses
        assert all(e.name in r.output for e in trainers) and f"Registered trainer ({len(trainers)})" in r.output
    else:
        assert "No trainer is registered yet" in r.output


def test_unknown_kind_is_a_one_line_error_with_exit_code_2():
    r = _invoke("widgets")
    assert r.exit_code == 2
    assert "unknown kind 'widgets'; kinds: attack, detector" in r.output
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) == 1
