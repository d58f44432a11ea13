"""R25's pass rule on hand-made seeds: growth from round 0, the defended-honest gap in every
round, and round 10's accuracy."""

from poisonlab.reproductions.r25_continuous_retraining import summarize


def _seed(undefended_last=0.6, defended_gap=0.0, gap_round=5, acc_gap=0.0):
    n = 11
    honest = [0.2] * n
    defended = [0.2 + (defended_gap if r == gap_round else 0.0) for r in range(n)]
    undefended = [0.2] + [undefended_last] * (n - 1)
    acc = [0.97] * n
    return {"curves": {"honest": {"targeted_error": honest, "accuracy": acc, "attack_admitted": [0] * n},
                       "undefended": {"targeted_error": undefended, "accuracy": [0.92] * n, "attack_admitted": [0] * n},
                       "defended": {"targeted_error": defended, "accuracy": acc[:-1] + [0.97 + acc_gap],
                                    "attack_admitted": [0] * n}},
            "group_rejected": 5, "honest_rejected": 0, "group_found": True}


def test_the_rule_passes_when_every_part_holds():
    out = summarize([_seed(), _seed()])
    assert out["passed"] and "growth +40.0%" in out["verdict"]
    assert out["measured"]["group_found_as_one"] == 2


def test_each_part_of_the_rule_can_fail_alone():
    assert not summarize([_seed(undefended_last=0.49)])["passed"]  # grows 29 points
    assert not summarize([_seed(defended_gap=0.06, gap_round=3)])["passed"]  # one round 6 points above honest
    assert summarize([_seed(defended_gap=0.05, gap_round=3)])["passed"]
    assert not summarize([_seed(acc_gap=-0.02)])["passed"]  # 2 points of accuracy lost
    # the worst round is taken over the seeds' mean, not over single seeds
    assert summarize([_seed(defended_gap=0.08), _seed(defended_gap=0.0)])["passed"]
