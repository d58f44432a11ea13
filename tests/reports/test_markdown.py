"""Markdown summaries of reproduction records: rates as percentages, timings as numbers."""

from poisonlab.reports.markdown import _fmt


def test_a_group_of_rates_keeps_its_timings_as_seconds():
    group = {"0.01": {"detection": {"mean": 1.0, "std": 0.0, "n": 3},
                      "seconds": {"mean": 8.2678, "std": 1.3662, "n": 3}}}
    assert _fmt(group, "by_attack_rate") == "{0.01: {detection: 100.00% ± 0.00%, seconds: 8.27 ± 1.37}}"


def test_a_plain_number_is_not_a_percentage():
    assert _fmt({"mean": 407.0, "std": 0.577, "n": 3}, "median_radius") == "407 ± 0.577"
    assert _fmt({"mean": 0.5, "n": 1}, "clean_accuracy") == "50.00%"
