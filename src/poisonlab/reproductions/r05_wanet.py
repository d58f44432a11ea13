"""R5: WaNet (Nguyen & Tran 2021) on MNIST.

Threat model: the attacker poisons 10% of the training set with an imperceptible warp (k = 4,
strength 0.5) relabelled 7, plus "noise mode" samples (random warps, labels kept, cross ratio
2) that keep the victim from learning any warp as the trigger. One cell on R1's data and
network, 10 epochs, run through the run layer.
"""

from __future__ import annotations

from .common import RunContext, backdoor_output, backdoor_summary, mnist_scenario

ID = "R5"
TITLE = "WaNet on MNIST"
SETTING = ("MNIST 50,000 training digits; k = 4, s = 0.5, rho_a = 0.1 (all-to-one -> 7), noise "
           "mode rho_n = 0.2 (cross ratio 2), static poisoning; R1's CNN, Adam 1e-3, 10 epochs")
PAPER = "WaNet official repository: MNIST clean 99.52%, ASR 99.86%"
TARGET = "clean >= 98.5%, ASR >= 95%"
#: Expected CPU minutes per seed on one thread (10.9 min for 3 seeds).
MINUTES = 3.6
DATA = ("mnist",)

EPOCHS = 10


def run(seed: int, ctx: RunContext) -> dict:
    params = {"target": 7, "poison_rate": 0.1, "k": 4, "strength": 0.5, "cross_ratio": 2.0}
    cell = ctx.cell(mnist_scenario(f"R5 seed={seed}", seed, attack="wanet", params=params, epochs=EPOCHS,
                                   clean_baseline=False, threads=ctx.threads))
    return backdoor_output(cell)


def summarize(runs: list[dict]) -> dict:
    return backdoor_summary(runs, clean_min=0.985, asr_min=0.95)
