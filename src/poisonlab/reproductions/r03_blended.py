"""R3: Blended (random-noise key) on MNIST.

Chen et al. 2017, "Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning": a
uniform-noise key blended into the image (alpha 0.2) at training and at test time. Threat
model: the attacker adds 50 / 300 / 600 poisoned digits relabelled 7 to the training set. Each
poison count is one cell on R1's data and network, run through the run layer.
"""

from __future__ import annotations

from .common import RunContext, mean_std, mnist_scenario, training_info

ID = "R3"
TITLE = "Blended (random-noise key) on MNIST"
SETTING = ("MNIST 50,000 training digits; a uniform-noise key blended with alpha = 0.2 into 50 / "
           "300 / 600 digits relabelled 7 (all-to-one); the same alpha at test time; R1's CNN, "
           "Adam 1e-3, 10 epochs")
PAPER = "Chen et al. 2017: about 50 poisons give ASR > 90% (random-noise key, YouTube Faces)"
TARGET = "ASR > 90% at 600 poisons; report 50 and 300"
#: Expected CPU minutes per seed on one thread (36.5 min for 3 seeds).
MINUTES = 12.2
DATA = ("mnist",)

R3_COUNTS = (50, 300, 600)
EPOCHS = 10


def run(seed: int, ctx: RunContext) -> dict:
    counts = {}
    for n in R3_COUNTS:
        cell = ctx.cell(mnist_scenario(f"R3 n_poison={n} seed={seed}", seed, attack="blended",
                                       params={"target": 7, "n_poison": n, "alpha": 0.2}, epochs=EPOCHS,
                                       clean_baseline=False, threads=ctx.threads))
        p = cell.results["train"]["poisoned"]
        counts[str(n)] = {"attack_success_rate": p["attack_success_rate"],
                          "clean_accuracy": p["clean_accuracy"],
                          "train_seconds": training_info(cell)["train_seconds"]}
    return {"counts": counts}


def summarize(runs: list[dict]) -> dict:
    by = {str(n): {m: mean_std([r["counts"][str(n)][m] for r in runs])
                   for m in ("attack_success_rate", "clean_accuracy")} for n in R3_COUNTS}
    asr600 = by["600"]["attack_success_rate"]["mean"]
    return {"measured": {"by_count": by}, "passed": asr600 > 0.90,
            "verdict": "ASR by poison count: " + ", ".join(
                f"{n}: {by[str(n)]['attack_success_rate']['mean']:.1%} (clean "
                f"{by[str(n)]['clean_accuracy']['mean']:.2%})" for n in R3_COUNTS)
                       + " (target > 90% at 600)"}
