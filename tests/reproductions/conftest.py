"""Stand-in reproductions (no data, no training) for the suite's machinery."""

import pytest

import poisonlab.reproductions as reproductions
from poisonlab.reproductions import Reproduction
from poisonlab.reproductions.common import mean_std


def summarize_accuracy(runs):
    acc = mean_std([r["acc"] for r in runs])
    return {"measured": {"accuracy": acc}, "passed": acc["mean"] > 0.5, "verdict": f"{acc['mean']:.2f}"}


@pytest.fixture
def stand_ins(monkeypatch):
    """R900 (passes; notes every context it is handed, in the returned list) and R901 (fails),
    added to the registry for the test."""
    seen = []

    def run(seed, ctx):
        seen.append(ctx)
        return {"acc": 0.6 + 0.1 * seed}

    reps = {**reproductions.REPRODUCTIONS,
            "R900": Reproduction("R900", "dummy", "s", "p", "t", run=run, summarize=summarize_accuracy,
                                 minutes=2.5, data=("digits",)),
            "R901": Reproduction("R901", "failing", "s", "p", "t", run=lambda seed, ctx: {"acc": 0.1},
                                 summarize=summarize_accuracy, minutes=0.1, data=("digits",))}
    monkeypatch.setattr(reproductions, "REPRODUCTIONS", reps)
    return seen
