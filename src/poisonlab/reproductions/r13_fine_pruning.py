"""R13: fine-pruning (Liu et al. 2018) R1's poisoned model.

Threat model: the defender holds a backdoored model and clean data, prunes the last
convolution's channels that clean inputs leave dormant (where a trigger may hide), then
fine-tunes. R1's poisoned model comes from the run layer's cache
(:func:`~.r01_badnets_mnist.r1_cell`).
"""

from __future__ import annotations

from .common import RunContext, mean_std
from .r01_badnets_mnist import r1_cell

ID = "R13"
TITLE = "Fine-pruning R1's model"
SETTING = ("R1's poisoned model (64 channels in conv2); channels pruned in increasing order of mean "
           "clean activation on 5,000 held-out digits until clean accuracy there would drop > 4%; "
           "fine-tune 1 epoch on 10,000 clean training digits")
PAPER = "ASR -> ~0% with a 0.4% clean drop in some cases (Liu et al. 2018); BackdoorBench FP leaves 57%"
TARGET = "ASR reduced below 20% with <= 4 points clean drop, or an honest report of why not"
#: Expected CPU minutes per seed on one thread (4.6 min for 3 seeds, with R1's model cached).
MINUTES = 1.5
DATA = ("mnist",)


def channel_diagnostic(module, layer: str, X_clean, X_triggered, pruned: list[int]) -> dict:
    """Where the backdoor lives: mean activation (after ReLU) of the pruned and of the kept
    channels of ``layer`` on clean and on triggered inputs, and how many of the channels that
    the trigger excites most (the top eighth by triggered minus clean activation) were pruned.

    Fine-pruning assumes the trigger rides on channels clean inputs leave dormant; when the
    channels the trigger excites are among the kept ones, pruning cannot reach the backdoor.
    """
    import numpy as np

    from ..defenses.model.fine_pruning import channel_activation

    clean = channel_activation(module, layer, X_clean)
    trig = channel_activation(module, layer, X_triggered)
    n = len(clean)
    mask = np.zeros(n, dtype=bool)
    mask[list(pruned)] = True
    top = np.argsort(-(trig - clean), kind="stable")[:max(1, n // 8)]

    def mean(a, m):
        return float(a[m].mean()) if m.any() else 0.0

    return {"pruned": {"clean": mean(clean, mask), "triggered": mean(trig, mask)},
            "kept": {"clean": mean(clean, ~mask), "triggered": mean(trig, ~mask)},
            "trigger_channels": [int(c) for c in top],
            "trigger_channels_pruned": int(mask[top].sum()),
            "n_trigger_channels": int(len(top))}


def run(seed: int, ctx: RunContext) -> dict:
    from ..defenses.model import fine_prune
    from ..evaluation.metrics import attack_success_rate

    cell = r1_cell(seed, ctx, clean=False)
    train, val, test = ctx.mnist()
    atk = cell.attacks[0]
    keep = test.y != 7
    Xt_trig = atk.apply_trigger(test.X[keep])

    def asr(m):
        return attack_success_rate(test.y[keep], m.predict(Xt_trig), 7)

    poisoned = cell.results["train"]["poisoned"]
    res = fine_prune(cell.models["poisoned"], train.X[:10000], train.y[:10000], X_val=val.X[:5000],
                     y_val=val.y[:5000], max_accuracy_drop=0.04, fine_tune_epochs=1, asr_fn=asr, seed=seed)
    clean_after = float((res.model.predict(test.X) == test.y).mean())
    module = getattr(cell.models["poisoned"], "module_", cell.models["poisoned"])
    where = channel_diagnostic(module, res.layer, test.X[keep], Xt_trig, res.pruned)
    before = {"clean_accuracy": poisoned["clean_accuracy"], "attack_success_rate": poisoned["attack_success_rate"]}
    return {"before": before, "curve": res.curve, "pruned": res.pruned,
            "final": {**res.final, "test_clean_accuracy": clean_after},
            "clean_drop": before["clean_accuracy"] - clean_after, "layer": res.layer,
            "asr_after_pruning_only": res.curve[-1].get("attack_success_rate"), "channels": where}


def summarize(runs: list[dict]) -> dict:
    asr = mean_std([r["final"]["attack_success_rate"] for r in runs])
    drop = mean_std([r["clean_drop"] for r in runs])
    pruned = mean_std([r["final"]["pruned"] for r in runs])
    where = [r.get("channels") for r in runs]
    diag = ""
    if all(where):
        hit = sum(w["trigger_channels_pruned"] for w in where)
        tot = sum(w["n_trigger_channels"] for w in where)
        kept_trig = sum(w["kept"]["triggered"] - w["kept"]["clean"] for w in where) / len(where)
        pruned_trig = sum(w["pruned"]["triggered"] - w["pruned"]["clean"] for w in where) / len(where)
        only = mean_std([r["asr_after_pruning_only"] for r in runs])["mean"]
        diag = (f"; ASR after pruning alone {only:.1%}; of the channels the trigger excites most, {hit} of {tot} were pruned (trigger minus clean "
                f"activation: kept channels {kept_trig:+.3f}, pruned {pruned_trig:+.3f})")
    return {"measured": {"ASR after": asr, "clean accuracy drop": drop,
                         "channels pruned (of 64)": {"mean": pruned["mean"], "std": pruned["std"], "n": pruned["n"]}},
            "passed": asr["mean"] < 0.20 and drop["mean"] <= 0.04,
            "verdict": f"ASR {runs[0]['before']['attack_success_rate']:.1%} -> {asr['mean']:.1%} (target < 20%), "
                       f"clean drop {drop['mean']:.2%} (target <= 4 points), {pruned['mean']:.0f} of 64 "
                       f"channels pruned{diag}"}
