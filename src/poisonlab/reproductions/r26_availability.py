"""R26: availability poisoning of a CNN on part of CIFAR-10: adversarial poisoning (Fowl et al.
2021) and error-minimising noise (unlearnable examples, Huang et al. 2021), L-inf 8/255.

Threat model: availability (indiscriminate), clean-label. The attacker perturbs every training
image (and, for the curve, a fraction of them) within 8/255 in L-inf and changes no label; the
victim trains a small CNN on the perturbed set and is measured on clean test images. Adversarial
poisoning crafts against a surrogate trained on the clean set (here: the clean-trained victim
network itself, as Fowl et al. do); error-minimising noise trains its own crafting network in
the min-min loop and needs no surrogate.

The victims are trained directly (not as scenario cells): the attacks need the attacker's
network, which a scenario cannot name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import RunContext, mean_std, train_config

ID = "R26"
TITLE = "Availability poisoning of a CNN on CIFAR-10 (part)"
SETTING = ("CIFAR-10: the first 5,000 images of data_batch_1 to train, the first 1,000 test images "
           "to test; victim cifar-cnn narrowed to widths 16/32/64, hidden 128 (CPU budget), Adam "
           "1e-3, batches of 128, 10 epochs, no augmentation; L-inf 8/255 on [0, 1] pixels, labels "
           "untouched. Adversarial poisoning (Fowl et al.): 10 PGD steps (step 2/255) against the "
           "clean-trained victim network as surrogate, class-targeted toward (y + 1) mod 10 and "
           "untargeted. Error-minimising noise (Huang et al.): min-min with 40 training steps and "
           "5 PGD steps (2/255) per outer iteration, at most 10 iterations, stop at 99% training "
           "accuracy on the perturbed data; sample-wise and class-wise (1 step per batch). Curve: "
           "the class-targeted poisons on 20/50/80% of the set, sample-wise noise on 50% (a random "
           "subset of the fully poisoned set, Huang et al.'s protocol). Seen by: spectral signatures "
           "(AUROC) and activation clustering (TPR/FPR) on the 50% victims' penultimate features; "
           "trimmed loss (trim 50%) training on the 50% class-targeted set")
PAPER = ("Fowl et al. 2021: CIFAR-10 ResNet-18 94.6% -> 6.3% (class-targeted, all data poisoned); "
         "Huang et al. 2021: unlearnable examples near chance (sample-wise 19.9%, class-wise 16.4%)")
TARGET = ("test accuracy at least 25 points below clean training with the whole training set "
          "poisoned (each attack reported; passes when the class-targeted adversarial poisoning and "
          "the sample-wise error-minimising noise both reach it)")
#: Expected CPU minutes per seed on one thread (42.2 min for 3 seeds beside other jobs: 19.0, 12.9, 10.2).
MINUTES = 14.1
DATA = ("cifar10",)

R26_TRAIN_SIZE = 5000
R26_TEST_SIZE = 1000
R26_EPOCHS = 10
R26_EPS = 8 / 255
R26_STEP = 2 / 255
R26_WIDTHS = (16, 32, 64)
R26_HIDDEN = 128
R26_AP_STEPS = 10
R26_UE_STEPS = 5
R26_UE_TRAIN_STEPS = 40
R26_UE_MAX_ITER = 10
#: Fractions of the training set poisoned for the curve (1.0 is the main run).
R26_AP_FRACTIONS = (0.2, 0.5, 0.8)
R26_UE_FRACTIONS = (0.5,)
R26_DROP = 0.25
#: The full-set runs, and the two the pass rule asks for.
R26_ATTACKS = ("adversarial class_targeted", "adversarial untargeted", "unlearnable sample_wise",
               "unlearnable class_wise")
R26_REQUIRED = ("adversarial class_targeted", "unlearnable sample_wise")


def load_r26_splits(data_dir: Any):
    """The first 5,000 images of CIFAR-10's data_batch_1 to train, the first 1,000 test images."""
    import dataclasses

    from ..data import load_cifar10

    splits = load_cifar10(data_dir, train_batches=(1,))
    return dataclasses.replace(splits, train=splits.train.subset(np.arange(R26_TRAIN_SIZE)),
                               test=splits.test.subset(np.arange(min(R26_TEST_SIZE, len(splits.test)))))


def _factory():
    from ..models.architectures import model_factory

    return model_factory("cifar-cnn", "image", widths=R26_WIDTHS, hidden=R26_HIDDEN)


def _victim(X, y, test, seed: int, label: str, ctx: RunContext):
    """Train the victim network on ``(X, y)``; return it and its clean test accuracy."""
    import time

    from ..models import TorchClassifier

    progress = ctx.progress()
    clf = TorchClassifier(_factory(), config=train_config(seed, R26_EPOCHS))
    t0 = time.perf_counter()
    clf.fit(X, y, callback=lambda event, info: progress(label, event, info))
    acc = float(np.mean(clf.predict(test.X) == test.y))
    return clf, {"test_accuracy": acc, "train_seconds": time.perf_counter() - t0}


def _mix(clean: np.ndarray, poisoned: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The clean set with a random ``fraction`` of its samples replaced by their poisoned
    version (the same draw for a seed whatever the attack); returns the set and the mask."""
    n = len(clean)
    idx = np.random.default_rng([seed, int(round(fraction * 1000))]).choice(n, int(round(fraction * n)),
                                                                            replace=False)
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    out = np.array(clean, copy=True)
    out[mask] = poisoned[mask]
    return out, mask


def _seen_by_detectors(model, X, y, mask, seed: int) -> dict[str, float]:
    """What spectral signatures (AUROC of the scores, per-class 1.5 eps removal recall) and
    activation clustering (TPR, FPR) see in the victim's penultimate features of its own
    training set."""
    from ..defenses.data import ActivationClustering, SpectralSignatures
    from ..evaluation.detection import auroc

    F = model.embed(X)
    share = float(mask.mean())
    spectral = SpectralSignatures(contamination=min(share, 0.5), threshold_rule="per_class").fit(F, y)
    ac = ActivationClustering(random_state=seed).fit(F, y)
    return {"spectral_auroc": auroc(spectral.scores_, mask),
            "spectral_recall": float(spectral.flags_[mask].mean()),
            "spectral_fpr": float(spectral.flags_[~mask].mean()),
            "ac_tpr": float(ac.flags_[mask].mean()), "ac_fpr": float(ac.flags_[~mask].mean())}


def run(seed: int, ctx: RunContext) -> dict:
    import time

    import torch

    from ..attacks.data import AdversarialPoisoning, Unlearnable
    from ..defenses.training import TrimmedLoss
    from ..models import ModelSpec

    splits = load_r26_splits(ctx.data_dir)
    train, test = splits.train, splits.test
    X, y = train.X, train.y
    out: dict[str, Any] = {"n_train": len(y), "n_test": len(test.y)}
    surrogate, out["clean"] = _victim(X, y, test, seed, "clean", ctx)

    full: dict[str, np.ndarray] = {}
    attacks: dict[str, dict] = {}
    for mode in ("class_targeted", "untargeted"):
        atk = AdversarialPoisoning(eps=R26_EPS, mode=mode, steps=R26_AP_STEPS, step_size=R26_STEP, poison_rate=1.0,
                                   random_state=seed)
        t0 = time.perf_counter()
        res = atk.poison(X, y, model=surrogate)
        full[f"adversarial {mode}"] = res.X
        attacks[f"adversarial {mode}"] = {"poison_seconds": time.perf_counter() - t0, "linf": res.info["linf"],
                                          "surrogate_fooled": res.info["surrogate_fooled"]}
    spec = ModelSpec(input_shape=tuple(X.shape[1:]), n_classes=train.n_classes)
    for mode in ("sample_wise", "class_wise"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            crafting_net = _factory()(spec)
        atk = Unlearnable(eps=R26_EPS, mode=mode, steps=R26_UE_STEPS if mode == "sample_wise" else 1,
                          step_size=R26_STEP, train_steps=R26_UE_TRAIN_STEPS, max_iter=R26_UE_MAX_ITER,
                          poison_rate=1.0, random_state=seed)
        t0 = time.perf_counter()
        res = atk.poison(X, y, model=crafting_net)
        full[f"unlearnable {mode}"] = res.X
        attacks[f"unlearnable {mode}"] = {"poison_seconds": time.perf_counter() - t0, "linf": res.info["linf"],
                                          "iterations": res.info["iterations"],
                                          "crafting_train_accuracy": res.info["crafting_train_accuracy"]}
    for name in R26_ATTACKS:
        _, attacks[name]["full"] = _victim(full[name], y, test, seed, f"{name} 100%", ctx)
    out["attacks"] = attacks

    curve: dict[str, dict] = {}
    for name, fractions in (("adversarial class_targeted", R26_AP_FRACTIONS),
                            ("unlearnable sample_wise", R26_UE_FRACTIONS)):
        curve[name] = {}
        for frac in fractions:
            Xm, mask = _mix(X, full[name], frac, seed)
            model, row = _victim(Xm, y, test, seed, f"{name} {frac:.0%}", ctx)
            if frac == 0.5:
                row.update(_seen_by_detectors(model, Xm, y, mask, seed))
                if name == "adversarial class_targeted":
                    t0 = time.perf_counter()
                    tl = TrimmedLoss(trim_fraction=0.5, warmup_epochs=1, random_state=seed).fit(
                        Xm, y, model_factory=_factory(), config=train_config(seed, R26_EPOCHS))
                    row["trimmed_loss"] = {
                        "test_accuracy": float(np.mean(tl.classifier_.predict(test.X) == test.y)),
                        "flagged_poison_share": float(mask[tl.flags_].mean()),
                        "poisons_flagged": float(tl.flags_[mask].mean()),
                        "train_seconds": time.perf_counter() - t0}
            curve[name][f"{frac:g}"] = row
    out["curve"] = curve
    return out


def summarize(runs: list[dict]) -> dict:
    clean = mean_std([r["clean"]["test_accuracy"] for r in runs])
    full = {name: mean_std([r["attacks"][name]["full"]["test_accuracy"] for r in runs]) for name in R26_ATTACKS}
    drop = {name: mean_std([r["clean"]["test_accuracy"] - r["attacks"][name]["full"]["test_accuracy"] for r in runs])
            for name in R26_ATTACKS}
    crafting = {name: {k: mean_std([r["attacks"][name][k] for r in runs])
                       for k in ("poison_seconds", "linf", "surrogate_fooled", "iterations", "crafting_train_accuracy")
                       if all(k in r["attacks"][name] for r in runs)} for name in R26_ATTACKS}
    curve: dict[str, dict] = {}
    for name, fractions in (("adversarial class_targeted", R26_AP_FRACTIONS),
                            ("unlearnable sample_wise", R26_UE_FRACTIONS)):
        curve[name] = {f"{f:g}": mean_std([r["curve"][name][f"{f:g}"]["test_accuracy"] for r in runs])
                       for f in fractions}
        curve[name]["1"] = full[name]
    seen = {name: {k: mean_std([r["curve"][name]["0.5"][k] for r in runs])
                   for k in ("spectral_auroc", "spectral_recall", "spectral_fpr", "ac_tpr", "ac_fpr")}
            for name in curve}
    trimmed = {k: mean_std([r["curve"]["adversarial class_targeted"]["0.5"]["trimmed_loss"][k] for r in runs])
               for k in ("test_accuracy", "flagged_poison_share", "poisons_flagged")}
    passed = all(drop[name]["mean"] >= R26_DROP for name in R26_REQUIRED)
    ap, ue = "adversarial class_targeted", "unlearnable sample_wise"
    verdict = (f"clean {clean['mean']:.1%}; whole set poisoned: "
               + ", ".join(f"{name} {full[name]['mean']:.1%} (-{drop[name]['mean'] * 100:.1f} pts)" for name in R26_ATTACKS)
               + f" (target >= {R26_DROP * 100:.0f} pts below clean for {ap} and {ue}); curve {ap}: "
               + ", ".join(f"{k}: {v['mean']:.1%}" for k, v in curve[ap].items())
               + f"; {ue} at 50%: {curve[ue]['0.5']['mean']:.1%}; at 50% spectral AUROC "
               f"{seen[ap]['spectral_auroc']['mean']:.2f} / {seen[ue]['spectral_auroc']['mean']:.2f}, AC TPR "
               f"{seen[ap]['ac_tpr']['mean']:.0%} / {seen[ue]['ac_tpr']['mean']:.0%} (FPR "
               f"{seen[ap]['ac_fpr']['mean']:.0%} / {seen[ue]['ac_fpr']['mean']:.0%}); trimmed loss on the 50% "
               f"{ap} set: {trimmed['test_accuracy']['mean']:.1%}, {trimmed['flagged_poison_share']['mean']:.0%} "
               f"of the trimmed are poisons")
    return {"measured": {"clean_accuracy": clean, "full_poison_accuracy": full, "drop": drop, "crafting": crafting,
                         "accuracy_by_fraction": curve, "seen_by_detectors_at_half": seen,
                         "trimmed_loss_at_half": trimmed},
            "passed": passed, "verdict": verdict}
