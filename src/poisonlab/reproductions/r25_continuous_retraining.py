"""R25: continuous retraining under a coordinated mislabelling group, with contributor reputation
and quarantine (the seeds' moderation-appeals example).

Threat model: a spam filter is retrained every round on user contributions. A group of 5 new
accounts, created together, sends its own spam labelled ham every round (appeals against
moderation); it controls only its accounts' messages and labels. The defender keeps a vetted seed
set, scores every contribution against its last model (a Beta reputation per contributor,
:mod:`poisonlab.provenance.reputation`) and holds new or doubtful contributors' messages in
quarantine until they are verified (:mod:`poisonlab.provenance.quarantine`).

Run through the run layer: one ``retraining`` scenario cell per seed
(:func:`~poisonlab.runs.retraining.run_retraining`, three arms on the same contributions).
"""

from __future__ import annotations

import numpy as np

from .common import RunContext, mean_std

ID = "R25"
TITLE = "Reputation and quarantine under continuous retraining"
SETTING = ("SMS Spam (seeded 80/20 split, split seed = seed); a vetted seed set (10% of the training split) "
           "trains the first model; 10 rounds, each with 20 honest contributions of 15 messages (true labels, "
           "drawn without replacement; after round 1 half come from new accounts) and a group of 5 new accounts "
           "that send 5 of their own spam messages each, labelled ham (the group owns half of the training spam "
           "outside the seed set); TF-IDF + logistic regression (C 100) retrained every round on everything "
           "admitted; three arms on the same contributions: honest (no group), undefended (all admitted), "
           "defended (Beta(1,1) reputation from agreement with the previous round's defended model; quarantine "
           "until 10 verified messages and a 95% lower credible bound >= 0.6; reject when the upper bound < 0.5 "
           "or as a sybil-like group: disagreement rate >= 0.5, cosine >= 0.9); targeted error = test spam "
           "classified ham; growth = undefended targeted error at round 10 minus round 0's (the seed model)")
PAPER = ("the seeds: reputation systems and quarantine for low-reputation contributors keep a coordinated "
         "group of new accounts out of continuous retraining")
TARGET = ("without defences the targeted error grows >= 30 points (round 10 vs round 0); with reputation + "
          "quarantine it stays within 5 points of the honest run in every round, and round 10's accuracy is "
          "within 1 point of the honest run's (means over seeds)")
#: Expected CPU minutes per seed on one thread.
MINUTES = 0.2
DATA = ("sms-spam",)

ROUNDS = 10


def scenario(seed: int, threads: int):
    """The seed's retraining cell (the example file ``examples/retraining-sms-spam.yaml``'s
    setting, with the dataset split seeded too)."""
    from ..runs.scenario import Scenario

    return Scenario.model_validate({
        "name": f"R25 seed={seed}",
        "dataset": {"name": "sms-spam", "params": {"split_seed": seed}},
        "retraining": {"rounds": ROUNDS, "seed_fraction": 0.1, "honest_contributors": 20,
                       "samples_per_contributor": 15, "new_fraction": 0.5, "group_size": 5,
                       "attacker_share": 0.5, "target_kind": "class", "target_class": 1, "flip_to": 0,
                       "learner": "tfidf-logreg", "min_verified": 10, "min_reputation": 0.6,
                       "reject_below": 0.5, "reject_sybils": True},
        "seeds": [seed],
        "threads": threads,
    })


def run(seed: int, ctx: RunContext) -> dict:
    (cell,) = ctx.grid(scenario(seed, ctx.threads))
    out = cell["results"]["retraining"]
    arms = out["arms"]
    curves = {arm: {"targeted_error": [r["targeted_error"] for r in arms[arm]],
                    "accuracy": [r["accuracy"] for r in arms[arm]],
                    "attack_admitted": [r["attack_admitted"] for r in arms[arm]]} for arm in arms}
    last = arms["defended"][-1]
    return {"deal": out["deal"], "curves": curves,
            "group_rejected": last["group_rejected"], "honest_rejected": last["honest_rejected"],
            "group_found": any(set(g) == set(out["deal"]["group"]) for g in last["sybil_groups"]),
            "decisions": out["decisions"]["by_kind"],
            "group_reputation": last["group_reputation"], "honest_reputation": last["honest_reputation"]}


def summarize(runs: list[dict]) -> dict:
    arms = ("honest", "undefended", "defended")
    te = {arm: np.array([r["curves"][arm]["targeted_error"] for r in runs]) for arm in arms}
    acc = {arm: np.array([r["curves"][arm]["accuracy"] for r in runs]) for arm in arms}
    growth = mean_std(list(te["undefended"][:, -1] - te["undefended"][:, 0]))
    growth_vs_honest = mean_std(list(te["undefended"][:, -1] - te["honest"][:, -1]))
    gap_by_round = (te["defended"] - te["honest"]).mean(axis=0)
    worst_gap = float(gap_by_round.max())
    acc_gap = mean_std(list(acc["defended"][:, -1] - acc["honest"][:, -1]))
    final = {arm: {"targeted_error": mean_std(list(te[arm][:, -1])), "accuracy": mean_std(list(acc[arm][:, -1]))}
             for arm in te}
    passed = growth["mean"] >= 0.30 and worst_gap <= 0.05 and abs(acc_gap["mean"]) <= 0.01
    seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
    measured = {
        "targeted_error_growth_undefended": growth, "targeted_error_undefended_minus_honest": growth_vs_honest,
        "defended_minus_honest_targeted_error_worst_round": worst_gap,
        "defended_minus_honest_accuracy_final": acc_gap,
        **{f"targeted_error_final_{arm}": final[arm]["targeted_error"] for arm in te},
        **{f"accuracy_final_{arm}": final[arm]["accuracy"] for arm in te},
        "group_rejected": mean_std([r["group_rejected"] for r in runs]),
        "honest_rejected": mean_std([r["honest_rejected"] for r in runs]),
        "group_found_as_one": sum(bool(r["group_found"]) for r in runs),
        "group_admitted_defended": mean_std([r["curves"]["defended"]["attack_admitted"][-1] for r in runs]),
        "seeds": len(runs)}
    verdict = (f"undefended targeted error {final['undefended']['targeted_error']['mean']:.1%} at round {ROUNDS}, "
               f"growth {growth['mean']:+.1%} from round 0 (target >= +30 points; {growth_vs_honest['mean']:+.1%} vs "
               f"honest); defended {final['defended']['targeted_error']['mean']:.1%} vs honest "
               f"{final['honest']['targeted_error']['mean']:.1%}, worst round gap {worst_gap:+.1%} (target <= 5 "
               f"points); accuracy defended {final['defended']['accuracy']['mean']:.2%} vs honest "
               f"{final['honest']['accuracy']['mean']:.2%} (target within 1 point); "
               f"{measured['group_rejected']['mean']:.0f}/5 group accounts rejected ({seeds})")
    return {"measured": measured, "passed": passed, "verdict": verdict}
