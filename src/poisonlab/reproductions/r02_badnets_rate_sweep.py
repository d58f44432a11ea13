"""R2: BadNets poison-rate sweep on MNIST.

R1's setting (:mod:`~poisonlab.reproductions.r01_badnets_mnist`) with 0.1 / 0.5 / 1 / 5 / 10% of
the 50,000 training digits poisoned: a grid of five cells over ``n_poison``, each run through
the run layer (so a stopped sweep keeps the models it trained, given a cache folder).
"""

from __future__ import annotations

from . import common
from .common import RunContext, mean_std, training_info
from .r01_badnets_mnist import r1_scenario

ID = "R2"
TITLE = "BadNets poison-rate sweep on MNIST"
SETTING = "R1's setting with 0.1 / 0.5 / 1 / 5 / 10% of the 50,000 training digits poisoned"
PAPER = "BackdoorBench CIFAR-10 (PreAct-ResNet18): 1% 74.7, 5% 88.7, 10% 95.0 ASR"
TARGET = "ASR rises with rate; a plot of ASR and clean accuracy vs rate"
#: Expected CPU minutes per seed on one thread: five of R1's poisoned models (R1: 16 min per
#: seed for two). The table's 7.8 min ran on 16 cores and is not comparable.
MINUTES = 40.0
DATA = ("mnist",)

R2_RATES = (0.001, 0.005, 0.01, 0.05, 0.10)


def run(seed: int, ctx: RunContext) -> dict:
    n_train = common.MNIST_DATASET["train_size"]  # R1's 50,000
    rates = {}
    for rate in R2_RATES:
        n = int(round(rate * n_train))
        cell = ctx.cell(r1_scenario(seed, clean_baseline=False, threads=ctx.threads,
                                    name=f"R2 n_poison={n} seed={seed}", n_poison=n))
        p = cell.results["train"]["poisoned"]
        rates[f"{rate:g}"] = {"n_poison": cell.results["poison"]["attacks"][0]["n_poison"],
                              "clean_accuracy": p["clean_accuracy"],
                              "attack_success_rate": p["attack_success_rate"],
                              **training_info(cell)}
    return {"rates": rates}


def summarize(runs: list[dict]) -> dict:
    by_rate = {}
    for rate in R2_RATES:
        key = f"{rate:g}"
        by_rate[key] = {
            "attack_success_rate": mean_std([r["rates"][key]["attack_success_rate"] for r in runs]),
            "clean_accuracy": mean_std([r["rates"][key]["clean_accuracy"] for r in runs]),
        }
    asr = [by_rate[f"{r:g}"]["attack_success_rate"]["mean"] for r in R2_RATES]
    # "ASR rises with rate": non-decreasing up to 1 point of noise, and clearly higher at the top.
    rises = all(b >= a - 0.01 for a, b in zip(asr, asr[1:])) and asr[-1] > asr[0]
    return {"measured": {"by_rate": by_rate},
            "passed": rises,
            "verdict": "ASR by rate: " + ", ".join(f"{r:.1%}: {a:.2%}" for r, a in zip(R2_RATES, asr))}
