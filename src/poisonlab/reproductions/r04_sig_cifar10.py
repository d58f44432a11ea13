"""R4: the SIG clean-label backdoor (Barni et al. 2019) on part of CIFAR-10.

Threat model: the attacker adds a faint horizontal sinusoid to 10% or 30% of the target class's
training images and leaves every label untouched (clean-label); at test time it adds the same
signal, optionally stronger, to any image. The victim trains ``cifar-cnn`` on the poisoned set;
a model trained on the clean set, given the same signal, shows what the signal alone does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import RunContext, mean_std, strip_models, train_config, victim_run

ID = "R4"
TITLE = "SIG clean-label backdoor on CIFAR-10 (part)"
SETTING = ("CIFAR-10 data_batch_1 + data_batch_2 (20,000 images) to train, the first 1,000 test "
           "images to test; sinusoid delta 20/255, f = 6 added to 10% and 30% of class 0 "
           "(airplane; labels untouched); cifar-cnn (3 conv 32/64/128, hidden 256), Adam 1e-3, "
           "10 epochs; ASR on the non-target test images with test amplitudes 20 / 30 / 40 / 60 "
           "(/255), as Barni et al. raise it at test time, and the same signal given to a model "
           "trained on the clean set (what the signal alone does). The first version ran on "
           "MNIST (R4-mnist-superseded.json): ASR below 1% at every amplitude")
PAPER = ("BackdoorBench CIFAR-10 SIG 10%: ASR 98.3% (there 10% of the training set, i.e. the "
         "whole target class)")
TARGET = "ASR >= 80% at 30% of the target class"
#: Expected CPU minutes per seed on one thread (60.1 min for 3 seeds).
MINUTES = 20.0
DATA = ("cifar10",)

R4_EPOCHS = 10
R4_TRAIN_DELTA = 20
R4_TEST_DELTAS = (20, 30, 40, 60)
R4_FRACTIONS = (0.1, 0.3)
R4_TARGET = 0
#: Training batches and test images of the setting (the shared partial copy holds exactly these).
R4_TRAIN_BATCHES = (1, 2)
R4_TEST_SIZE = 1000


def load_r4_splits(data_dir: Any):
    """CIFAR-10 data_batch_1 + data_batch_2 to train, the first 1,000 test images to test."""
    import dataclasses

    from ..data import load_cifar10

    splits = load_cifar10(data_dir, train_batches=R4_TRAIN_BATCHES)
    n_test = min(R4_TEST_SIZE, len(splits.test))
    return dataclasses.replace(splits, test=splits.test.subset(np.arange(n_test)))


def run(seed: int, ctx: RunContext) -> dict:
    from ..attacks.data import SIG
    from ..evaluation.experiment import train_and_measure
    from ..evaluation.metrics import backdoor_metrics

    splits = load_r4_splits(ctx.data_dir)
    train, test = splits.train, splits.test

    def by_delta(model, atk) -> dict:
        return {str(d): backdoor_metrics(model, atk.clone().set_params(test_delta=d / 255), test.X, test.y,
                                         test.n_classes)["attack_success_rate"] for d in R4_TEST_DELTAS}

    out: dict[str, Any] = {"fractions": {}}
    atk = None
    for frac in R4_FRACTIONS:
        n = int(round(frac * np.sum(train.y == R4_TARGET)))
        atk = SIG(target=R4_TARGET, n_poison=n, delta=R4_TRAIN_DELTA / 255, frequency=6, clip=(0.0, 1.0),
                  random_state=seed)
        result = victim_run(train, test, atk, seed, R4_EPOCHS, ctx, architecture="cifar-cnn")
        model = result["models"]["poisoned"]
        result = strip_models(result)
        result["asr_by_test_delta"] = by_delta(model, atk)
        result["clean_accuracy"] = result["poisoned"]["clean_accuracy"]
        out["fractions"][f"{frac:g}"] = result
    clean = train_and_measure(train, train.X, train.y, test, atk, architecture="cifar-cnn",
                              config=train_config(seed, R4_EPOCHS), label="clean", progress=ctx.progress())
    model = clean.pop("model")
    out["clean_model"] = {"clean_accuracy": clean["clean_accuracy"], "train_seconds": clean["train_seconds"],
                          "asr_by_test_delta": by_delta(model, atk)}
    return out


def summarize(runs: list[dict]) -> dict:
    by = {f"{frac:g}": {str(d): mean_std([r["fractions"][f"{frac:g}"]["asr_by_test_delta"][str(d)] for r in runs])
                        for d in R4_TEST_DELTAS} for frac in R4_FRACTIONS}
    clean_acc = {f"{frac:g}": mean_std([r["fractions"][f"{frac:g}"]["clean_accuracy"] for r in runs])
                 for frac in R4_FRACTIONS}
    baseline = {str(d): mean_std([r["clean_model"]["asr_by_test_delta"][str(d)] for r in runs]) for d in R4_TEST_DELTAS}
    clean_model_acc = mean_std([r["clean_model"]["clean_accuracy"] for r in runs])
    # the setting's amplitudes are 20-40/255: train at 20 (BackdoorBench), test at up to 40
    asr = by["0.3"]["40"]["mean"]
    return {"measured": {"asr_by_fraction_and_test_delta": by, "clean_accuracy_by_fraction": clean_acc,
                         "clean_model_asr_by_test_delta": baseline, "clean_model_accuracy": clean_model_acc},
            "passed": asr >= 0.80,
            "verdict": (f"ASR at 30% of the target class, trained at {R4_TRAIN_DELTA}/255, by test amplitude: "
                        + ", ".join(f"{d}/255: {by['0.3'][str(d)]['mean']:.1%}" for d in R4_TEST_DELTAS)
                        + " (target >= 80% within 20-40/255); at 10%: "
                        + ", ".join(f"{d}: {by['0.1'][str(d)]['mean']:.1%}" for d in R4_TEST_DELTAS)
                        + f"; clean model given the signal: {baseline['40']['mean']:.1%} at 40/255; clean accuracy "
                        f"{clean_acc['0.3']['mean']:.2%} (clean model {clean_model_acc['mean']:.2%})")}
