"""Reproductions of the invisible, clean-label and gradient-based attacks (R3-R9)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .reproduce import Progress, _mnist, mean_std, reproduction


def _config(seed: int, epochs: int):
    from ..models.training import TrainConfig

    return TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, optimizer="adam", seed=seed)


def _backdoor_summary(runs: list[dict], *, clean_min: float | None, asr_min: float, key: str = "") -> dict:
    clean = mean_std([r["poisoned"]["clean_accuracy"] for r in runs])
    asr = mean_std([r["poisoned"]["attack_success_rate"] for r in runs])
    passed = asr["mean"] >= asr_min and (clean_min is None or clean["mean"] >= clean_min)
    verdict = f"ASR {asr['mean']:.2%} +- {asr['std']:.2%} (target >= {asr_min:.0%}), clean {clean['mean']:.2%}"
    if clean_min is not None:
        verdict += f" (target >= {clean_min:.1%})"
    return {"measured": {"clean_accuracy": clean, "attack_success_rate": asr}, "passed": passed,
            "verdict": verdict}


def _victim_run(train, test, atk, seed: int, epochs: int, progress: Progress | None, *,
                architecture: str = "strip-mnist-cnn", **poison_kwargs) -> dict:
    """Poison ``train`` with ``atk`` and train ``architecture`` (default R1's CNN) on it, no
    clean baseline: the run of :func:`~poisonlab.evaluation.experiment.run_backdoor`, models
    included."""
    from .experiment import run_backdoor

    return run_backdoor(train, test, atk, architecture=architecture, config=_config(seed, epochs),
                        clean_baseline=False, progress=progress, poison_kwargs=poison_kwargs or None)


def _strip_backdoor_output(out: dict) -> dict:
    out = dict(out)
    out.pop("models", None), out.pop("poison_result", None)
    return out


# --- R3: Blended -------------------------------------------------------------------------------

R3_COUNTS = (50, 300, 600)


def _summarize_r3(runs: list[dict]) -> dict:
    by = {str(n): {m: mean_std([r["counts"][str(n)][m] for r in runs])
                   for m in ("attack_success_rate", "clean_accuracy")} for n in R3_COUNTS}
    asr600 = by["600"]["attack_success_rate"]["mean"]
    return {"measured": {"by_count": by}, "passed": asr600 > 0.90,
            "verdict": "ASR by poison count: " + ", ".join(
                f"{n}: {by[str(n)]['attack_success_rate']['mean']:.1%} (clean "
                f"{by[str(n)]['clean_accuracy']['mean']:.2%})" for n in R3_COUNTS)
                       + " (target > 90% at 600)"}


@reproduction(
    "R3", title="Blended (random-noise key) on MNIST",
    setting="MNIST 50,000 training digits; a uniform-noise key blended with alpha = 0.2 into 50 / "
            "300 / 600 digits relabelled 7 (all-to-one); the same alpha at test time; R1's CNN, "
            "Adam 1e-3, 10 epochs",
    paper="Chen et al. 2017: about 50 poisons give ASR > 90% (random-noise key, YouTube Faces)",
    target="ASR > 90% at 600 poisons; report 50 and 300",
    summarize=_summarize_r3,
)
def _r3(seed: int, root: Any, progress: Progress | None) -> dict:
    from ..attacks.data import Blended

    train, _val, test = _mnist(root)
    counts = {}
    for n in R3_COUNTS:
        atk = Blended(target=7, n_poison=n, alpha=0.2, random_state=seed)
        out = _strip_backdoor_output(_victim_run(train, test, atk, seed, 10, progress))
        counts[str(n)] = {"attack_success_rate": out["poisoned"]["attack_success_rate"],
                          "clean_accuracy": out["poisoned"]["clean_accuracy"],
                          "train_seconds": out["poisoned"]["train_seconds"]}
    return {"counts": counts}


# --- R4: SIG -----------------------------------------------------------------------------------

R4_EPOCHS = 10
R4_TRAIN_DELTA = 20
R4_TEST_DELTAS = (20, 30, 40, 60)
R4_FRACTIONS = (0.1, 0.3)
R4_TARGET = 0


def _summarize_r4(runs: list[dict]) -> dict:
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
                        + f" (target >= 80% within 20-40/255); at 10%: "
                        + ", ".join(f"{d}: {by['0.1'][str(d)]['mean']:.1%}" for d in R4_TEST_DELTAS)
                        + f"; clean model given the signal: {baseline['40']['mean']:.1%} at 40/255; clean accuracy "
                        f"{clean_acc['0.3']['mean']:.2%} (clean model {clean_model_acc['mean']:.2%})")}


@reproduction(
    "R4", title="SIG clean-label backdoor on CIFAR-10 (part)",
    setting="CIFAR-10 data_batch_1 + data_batch_2 (20,000 images) to train, the first 1,000 test "
            "images to test; sinusoid delta 20/255, f = 6 added to 10% and 30% of class 0 "
            "(airplane; labels untouched); cifar-cnn (3 conv 32/64/128, hidden 256), Adam 1e-3, "
            "10 epochs; ASR on the non-target test images with test amplitudes 20 / 30 / 40 / 60 "
            "(/255), as Barni et al. raise it at test time, and the same signal given to a model "
            "trained on the clean set (what the signal alone does). The first version ran on "
            "MNIST (R4-mnist-superseded.json): ASR below 1% at every amplitude",
    paper="BackdoorBench CIFAR-10 SIG 10%: ASR 98.3% (there 10% of the training set, i.e. the "
          "whole target class)",
    target="ASR >= 80% at 30% of the target class",
    summarize=_summarize_r4,
)
def _r4(seed: int, root: Any, progress: Progress | None) -> dict:
    from ..attacks.data import SIG
    from ..data import load_cifar10
    from ..evaluation.metrics import backdoor_metrics
    from .experiment import train_and_measure

    splits = load_cifar10(root)
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
        run = _victim_run(train, test, atk, seed, R4_EPOCHS, progress, architecture="cifar-cnn")
        model = run["models"]["poisoned"]
        run = _strip_backdoor_output(run)
        run["asr_by_test_delta"] = by_delta(model, atk)
        run["clean_accuracy"] = run["poisoned"]["clean_accuracy"]
        out["fractions"][f"{frac:g}"] = run
    clean = train_and_measure(train, train.X, train.y, test, atk, architecture="cifar-cnn",
                              config=_config(seed, R4_EPOCHS), label="clean", progress=progress)
    model = clean.pop("model")
    out["clean_model"] = {"clean_accuracy": clean["clean_accuracy"], "train_seconds": clean["train_seconds"],
                          "asr_by_test_delta": by_delta(model, atk)}
    return out


# --- R5: WaNet ---------------------------------------------------------------------------------

def _summarize_r5(runs: list[dict]) -> dict:
    return _backdoor_summary(runs, clean_min=0.985, asr_min=0.95)


@reproduction(
    "R5", title="WaNet on MNIST",
    setting="MNIST 50,000 training digits; k = 4, s = 0.5, rho_a = 0.1 (all-to-one -> 7), noise "
            "mode rho_n = 0.2 (cross ratio 2), static poisoning; R1's CNN, Adam 1e-3, 10 epochs",
    paper="WaNet official repository: MNIST clean 99.52%, ASR 99.86%",
    target="clean >= 98.5%, ASR >= 95%",
    summarize=_summarize_r5,
)
def _r5(seed: int, root: Any, progress: Progress | None) -> dict:
    from ..attacks.data import WaNet

    train, val, test = _mnist(root)
    atk = WaNet(target=7, poison_rate=0.1, k=4, strength=0.5, cross_ratio=2.0, random_state=seed)
    return _strip_backdoor_output(_victim_run(train, test, atk, seed, 10, progress))


# --- R6: label-consistent ----------------------------------------------------------------------

def _surrogate(val, seed: int, epochs: int = 10):
    """The attacker's own model: R1's CNN adversarially trained (PGD, L-inf 0.3, 7 steps, the
    radius ramped up over the first 2 epochs) on the 10,000 held-out digits, which the victim
    never sees. Turner et al. craft against a separately trained *robust* model: its gradients
    change what the digit looks like, so the victim cannot learn the poisons from their content
    and has to use the trigger. (Against a standard surrogate, R6 measured ASR 0.4%.)"""
    from ..models import TorchClassifier
    from ..models.robust import AdversarialTraining
    from .experiment import model_factory

    cfg = _config(seed + 1000, epochs)
    ramp = 2 * -(-len(val.X) // cfg.batch_size)
    return TorchClassifier(model_factory("strip-mnist-cnn", "image"), config=cfg).fit(
        val.X, val.y, batch_transform=AdversarialTraining(eps=0.3, steps=7, step_size=0.1, ramp=ramp, seed=seed))


R6_VARIANTS = {
    # name: LabelConsistent parameters beyond the shared ones (target 7, 500 poisons, 100 steps)
    "linf 0.3 away, corner square": {"eps": 0.3},
    "linf 0.4 away, four-corner checkerboard": {"eps": 0.4, "pattern": "checkerboard", "location": "four-corners"},
    "linf 0.3 toward random classes, corner square": {"eps": 0.3, "direction": "random-class"},
    "no PGD (ablation), corner square": {"perturb": False},
}


def _summarize_r6(runs: list[dict]) -> dict:
    by = {name: {m: mean_std([r["variants"][name][m] for r in runs])
                 for m in ("attack_success_rate", "clean_accuracy", "poisons_misclassified_by_reference",
                           "perturbed_non_targets_to_target_without_trigger")
                 if all(m in r["variants"][name] for r in runs)}
          for name in R6_VARIANTS}
    main = by["linf 0.3 away, corner square"]["attack_success_rate"]["mean"]
    best = max(v["attack_success_rate"]["mean"] for v in by.values())
    diag = by["linf 0.3 away, corner square"]
    return {"measured": {"by_variant": by,
                         "uniform_noise_non_targets_to_target": mean_std([r["uniform_noise_to_target"] for r in runs])},
            "passed": best >= 0.70,
            "verdict": (f"ASR {main:.2%} with the paper's PGD (target >= 70%); best of "
                        f"{len(R6_VARIANTS)} variants {best:.2%}; poisons the ablation model misclassifies: "
                        f"{diag['poisons_misclassified_by_reference']['mean']:.0%}; non-7 test digits "
                        f"given the same PGD, classified 7 with no trigger: "
                        f"{diag['perturbed_non_targets_to_target_without_trigger']['mean']:.0%}")}


@reproduction(
    "R6", title="Label-consistent backdoor on MNIST",
    setting="MNIST 50,000 training digits; 500 class-7 images (1% of the training set, 10% of "
            "the class) perturbed by PGD (100 steps) against a surrogate CNN adversarially "
            "trained (PGD L-inf 0.3) on the 10,000 held-out digits, then the trigger; labels "
            "untouched; victim: R1's CNN, Adam 1e-3, 10 epochs. Variants: L-inf 0.3 away from "
            "7 with a 3x3 white square bottom-right (the paper's PGD); L-inf 0.4 with Turner et "
            "al.'s four-corner checkerboard; L-inf 0.3 toward a random other class per image; "
            "the square without PGD (ablation). Diagnostics: poisons the ablation victim (a "
            "nearly clean model) misclassifies; 500 non-7 test digits perturbed the same way, "
            "classified 7 without the trigger (and uniform noise of the same size as control)",
    paper="BackdoorBench CIFAR-10 LC 1%: ASR 90.6%; Turner et al. 2019",
    target="ASR >= 70% at <= 1% of the training set",
    summarize=_summarize_r6,
)
def _r6(seed: int, root: Any, progress: Progress | None) -> dict:
    import time

    from ..models.gradients import pgd
    from ..attacks.data import LabelConsistent

    train, val, test = _mnist(root)
    t0 = time.perf_counter()
    surrogate = _surrogate(val, seed)
    out: dict[str, Any] = {"surrogate_seconds": time.perf_counter() - t0,
                           "surrogate_clean_accuracy": float(np.mean(surrogate.predict(test.X) == test.y))}
    rng = np.random.default_rng(seed)
    others = rng.choice(np.flatnonzero(test.y != 7), 500, replace=False)
    variants: dict[str, dict] = {}
    models, results = {}, {}
    for name, extra in R6_VARIANTS.items():
        atk = LabelConsistent(target=7, n_poison=500, steps=100, random_state=seed, **extra)
        run = _victim_run(train, test, atk, seed, 10, progress, model=surrogate)
        models[name], results[name] = run["models"]["poisoned"], run["poison_result"]
        variants[name] = {"attack_success_rate": run["poisoned"]["attack_success_rate"],
                          "clean_accuracy": run["poisoned"]["clean_accuracy"],
                          "crafting_seconds_per_poison": run["attack"]["poison_seconds"] / 500}
        if extra.get("perturb", True) and extra.get("direction", "away") == "away":
            # the same perturbation on non-7 test digits, without the trigger
            X_pert = pgd(surrogate.module_, test.X[others], test.y[others], eps=extra["eps"], steps=100, seed=seed)
            variants[name]["perturbed_non_targets_to_target_without_trigger"] = float(
                np.mean(models[name].predict(X_pert) == 7))
    # how hard the poisons are: the ablation victim (trained on unperturbed 7s with the patch,
    # a nearly clean model) does not call them 7
    reference = models["no PGD (ablation), corner square"]
    for name, extra in R6_VARIANTS.items():
        if extra.get("perturb", True):
            res = results[name]
            variants[name]["poisons_misclassified_by_reference"] = float(
                np.mean(reference.predict(res.X[res.indices]) != 7))
    noise = np.clip(test.X[others] + rng.uniform(-0.3, 0.3, test.X[others].shape), 0, 1).astype(test.X.dtype)
    out["uniform_noise_to_target"] = float(np.mean(models["linf 0.3 away, corner square"].predict(noise) == 7))
    out["variants"] = variants
    return out


# --- R9: poisoning a linear SVM ----------------------------------------------------------------

R9_RATES = (0.05, 0.10, 0.20)


def _summarize_r9(runs: list[dict]) -> dict:
    measured = {"clean_error": mean_std([r["clean_error"] for r in runs])}
    for kind in ("random", "adversarial"):
        for rate in R9_RATES:
            measured[f"{kind}_{rate:g}"] = mean_std([r[kind][f"{rate:g}"] for r in runs])
    measured["gradient_1_point"] = mean_std([r["gradient_1_point"] for r in runs])
    adv, rnd = measured["adversarial_0.2"]["mean"], measured["random_0.2"]["mean"]
    return {"measured": measured, "passed": adv >= 0.35 and rnd < 0.25,
            "verdict": (f"test error: clean {measured['clean_error']['mean']:.1%}; 20% flips adversarial "
                        f"{adv:.1%} (target >= 35%), random {rnd:.1%} (target < 25%); one gradient point "
                        f"{measured['gradient_1_point']['mean']:.1%}")}


@reproduction(
    "R9", title="Label flipping and gradient poisoning of a linear SVM (MNIST 7 vs 1)",
    setting="MNIST 7 vs 1 pixels in [0, 1]; 100 training and 500 attacker-validation digits drawn "
            "per seed from the 50,000 training digits; linear SVC C = 1; test on every 7 and 1 of "
            "the MNIST test set. Random vs greedy adversarial flips (ALFA-like: each round keeps the "
            "flip that most raises the attacker-validation hinge loss) at 5 / 10 / 20%; Biggio's gradient attack with 1 point (step 0.1, "
            "at most 200 steps)",
    paper="Biggio et al. 2011/2012: adversarial flips raise the error far more than random ones; "
          "one gradient point: 2-5% -> 15-20% error",
    target="adversarial 20% flips >= 35% error while random 20% stays below 25%",
    summarize=_summarize_r9,
)
def _r9(seed: int, root: Any, progress: Progress | None) -> dict:
    import time

    from sklearn.svm import SVC

    from ..attacks.data import AdversarialLabelFlip, RandomLabelFlip, SVMPoisoning

    train, _val, test = _mnist(root)
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(np.isin(train.y, (1, 7)))
    pick = rng.choice(pool, 600, replace=False)
    flat = lambda X: X.reshape(len(X), -1).astype(np.float64)  # noqa: E731
    Xtr, ytr = flat(train.X[pick[:100]]), (train.y[pick[:100]] == 7).astype(np.int64)
    Xval, yval = flat(train.X[pick[100:]]), (train.y[pick[100:]] == 7).astype(np.int64)
    tmask = np.isin(test.y, (1, 7))
    Xte, yte = flat(test.X[tmask]), (test.y[tmask] == 7).astype(np.int64)

    def error(X, y) -> float:
        return float(np.mean(SVC(kernel="linear", C=1.0).fit(X, y).predict(Xte) != yte))

    out: dict[str, Any] = {"clean_error": error(Xtr, ytr), "random": {}, "adversarial": {}, "attack_seconds": {}}
    for rate in R9_RATES:
        n = int(round(rate * len(ytr)))
        out["random"][f"{rate:g}"] = error(Xtr, RandomLabelFlip(n_poison=n, random_state=seed).poison(Xtr, ytr).y)
        t0 = time.perf_counter()
        res = AdversarialLabelFlip(n_poison=n, random_state=seed).poison(Xtr, ytr, X_val=Xval, y_val=yval)
        out["attack_seconds"][f"adversarial_{rate:g}"] = time.perf_counter() - t0
        out["adversarial"][f"{rate:g}"] = error(Xtr, res.y)
    t0 = time.perf_counter()
    res = SVMPoisoning(n_poison=1, C=1.0, step_size=0.1, max_iter=200, random_state=seed).poison(
        Xtr, ytr, X_val=Xval, y_val=yval)
    out["attack_seconds"]["gradient_1_point"] = time.perf_counter() - t0
    out["gradient_1_point"] = error(res.X, res.y)
    out["gradient_linf"] = float(np.abs(res.X[-1] - Xtr).max(axis=1).min())
    return out


# --- R7: feature collision with a frozen extractor ------------------------------------------------

R7_TARGETS = 20
R7_EPS = (None, 0.3)


def _summarize_r7(runs: list[dict]) -> dict:
    by = {str(e): mean_std([r["success_rate"][str(e)] for r in runs]) for e in R7_EPS}
    linf = {str(e): mean_std([r["linf_mean"][str(e)] for r in runs]) for e in R7_EPS}
    return {"measured": {"success_rate": by, "linf_mean": linf,
                         "crafting_seconds_per_poison": mean_std([r["crafting_seconds_per_poison"] for r in runs])},
            "passed": by["None"]["mean"] >= 0.5,
            "verdict": (f"success over {R7_TARGETS} targets with 5 poisons: unbounded (the paper's setting) "
                        f"{by['None']['mean']:.0%} (mean L-inf {linf['None']['mean']:.2f}), L-inf <= 0.3 "
                        f"{by['0.3']['mean']:.0%} (target >= 50% with a generous eps)")}


@reproduction(
    "R7", title="Feature collision (Poison Frogs) with a frozen feature extractor, Fashion-MNIST",
    setting="R1's CNN trained 3 epochs on Fashion-MNIST classes 0-4 (30,000 images) and frozen; "
            "victim head: logistic regression (C = 100) on its 128-d features of 100 training "
            "images per class of classes 5-9, retrained with the poisons; 20 targets (test "
            "images of 5-9 the clean head gets right), each with a random other base class and "
            "5 poisons; forward-backward splitting beta 0.01, lr 0.05, 1,000 steps; unbounded "
            "(as the paper) and L-inf <= 0.3",
    paper="Shafahi et al. 2018: one-shot ~100% on frozen InceptionV3 features; Just How Toxic: "
          "frozen white-box FC 16% at eps 8/255",
    target="success rate over 20 targets with eps and poison count stated; >= 50% with 5 poisons "
           "and a generous eps",
    summarize=_summarize_r7,
)
def _r7(seed: int, root: Any, progress: Progress | None) -> dict:
    import time

    from sklearn.linear_model import LogisticRegression

    from ..attacks.data import FeatureCollision
    from ..data import load_fashion_mnist
    from ..models import TorchClassifier
    from .experiment import model_factory

    splits = load_fashion_mnist(root)
    tr, te = splits.train, splits.test
    low = tr.y < 5
    extractor = TorchClassifier(model_factory("strip-mnist-cnn", "image"), config=_config(seed, 3)).fit(
        tr.X[low], tr.y[low])
    rng = np.random.default_rng(seed)
    head_idx = np.concatenate([rng.choice(np.flatnonzero(tr.y == c), 100, replace=False) for c in range(5, 10)])
    Xh, yh = tr.X[head_idx], tr.y[head_idx] - 5

    def head(X, y):
        return LogisticRegression(C=100.0, max_iter=5000).fit(extractor.embed(X), y)

    clean_head = head(Xh, yh)
    pool = np.flatnonzero(te.y >= 5)
    right = pool[clean_head.predict(extractor.embed(te.X[pool])) == te.y[pool] - 5]
    targets = rng.choice(right, R7_TARGETS, replace=False)
    success = {str(e): [] for e in R7_EPS}
    linf = {str(e): [] for e in R7_EPS}
    craft_s = 0.0
    for k, t in enumerate(targets):
        true = int(te.y[t] - 5)
        base = int((true + 1 + rng.integers(4)) % 5)
        for eps in R7_EPS:
            atk = FeatureCollision(base_class=base, n_poison=5, beta=0.01, lr=0.05, steps=1000, eps=eps,
                                   random_state=seed * 1000 + k)
            t0 = time.perf_counter()
            res = atk.poison(Xh, yh, model=extractor, target_input=te.X[t])
            craft_s += time.perf_counter() - t0
            pred = int(head(res.X, res.y).predict(extractor.embed(te.X[t:t + 1]))[0])
            success[str(eps)].append(pred == base)
            linf[str(eps)].append(res.info["linf"])
        if progress is not None:
            progress("R7", "target", {"done": k + 1, "total": R7_TARGETS})
    return {"clean_head_accuracy": float(np.mean(clean_head.predict(extractor.embed(te.X[pool])) == te.y[pool] - 5)),
            "success_rate": {e: float(np.mean(v)) for e, v in success.items()},
            "linf_mean": {e: float(np.mean(v)) for e, v in linf.items()},
            "crafting_seconds_per_poison": craft_s / (5 * R7_TARGETS * len(R7_EPS)),
            "per_target": {e: [bool(v) for v in vals] for e, vals in success.items()}}


# --- R8: gradient matching -----------------------------------------------------------------------

R8_TARGETS = 10
#: Surrogates and victims train long enough to fit most of their training set (94% after 25
#: epochs, against 65% after the 8 epochs of the first version): gradient matching moves a
#: target through the poisons' share of the late training gradient, which an underfitted
#: model's clean samples drown.
R8_EPOCHS = 20
#: Poisons transferred weakly from one surrogate's weights to a freshly initialised victim (an
#: exploration: 3 of 10 targets on a victim sharing the surrogate's initialisation, 1 of 10 on a
#: fresh one), so the ensemble is 3 and the poisons are the adversarial-class images with the
#: largest training gradient (the released code's "max_gradient" selection).
R8_SURROGATES = 3
R8_SELECTION = "max_gradient"


def _r8_config(seed: int):
    """The paper's kind of training for surrogates and victims: SGD with (plain, not Nesterov) momentum
    0.9, weight decay 5e-4, the step schedule (x0.1 at 1/2 and 3/4). Rate 0.05 fits this
    ConvNet as Adam 1e-3 did (seed 1, 20 epochs: 95% train / 63.1% test, against 0.01's 60% /
    54%). Adam's per-parameter scaling bends the poisons' gradient away from the direction they
    were matched to; SGD follows it (the third version used Adam: R8-adam-superseded.json)."""
    from ..models.training import TrainConfig

    return TrainConfig(epochs=R8_EPOCHS, batch_size=128, lr=0.05, optimizer="sgd", momentum=0.9,
                       weight_decay=5e-4, lr_schedule="step", seed=seed)


def _summarize_r8(runs: list[dict]) -> dict:
    rate = mean_std([r["success_rate"] for r in runs])
    return {"measured": {"success_rate": rate,
                         "victim_clean_accuracy": mean_std([r["victim_clean_accuracy"] for r in runs]),
                         "alignment_loss": mean_std([r["alignment_loss_mean"] for r in runs]),
                         "crafting_seconds_per_poison": mean_std([r["crafting_seconds_per_poison"] for r in runs])},
            "passed": rate["mean"] > 0.20,
            "verdict": f"{rate['mean']:.0%} of {R8_TARGETS} targets misclassified as the adversarial class "
                       f"(target > 20%)"}


@reproduction(
    "R8", title="Gradient matching (Witches' Brew), CIFAR-10 part, small ConvNet",
    setting="CIFAR-10 data_batch_1 (10,000 images) to train, the 1,000 test images for targets; "
            f"2-conv ConvNet (32/64, hidden 128), SGD 0.05 (momentum 0.9, weight decay 5e-4, x0.1 at "
            f"1/2 and 3/4), {R8_EPOCHS} epochs; an ensemble of "
            f"{R8_SURROGATES} surrogates trained on the clean set (seeds unlike the victims'); per "
            "target (a test image the first surrogate classifies right, a random other adversarial "
            f"class) 100 poisons (1%) of the adversarial class (selection: {R8_SELECTION}), eps 16/255, 250 signed-Adam steps "
            "(step divided by 10 at 3/8, 5/8, 7/8) through random 2-pixel shifts, 1 restart; a "
            "victim retrained from scratch on each poisoned set. The first version (8 epochs, 1 "
            "surrogate, constant step) hit 1 of 10 (R8-8-epochs-superseded.json), the second (20 "
            "epochs, 2 surrogates, random selection) 2 of 10 (R8-2-surrogates-superseded.json), the "
            "third (3 surrogates, max_gradient, Adam 1e-3) 2 of 10 (R8-adam-superseded.json)",
    paper="Witches' Brew: ~90% on CIFAR-10 ResNet-18 (not verified)",
    target="success rate reported; > 20%",
    summarize=_summarize_r8,
)
def _r8(seed: int, root: Any, progress: Progress | None) -> dict:
    import time

    from ..attacks.data import GradientMatching
    from ..data import load_cifar10
    from ..models import TorchClassifier
    from .experiment import model_factory

    splits = load_cifar10(root)
    X, y, te = splits.train.X[:10_000], splits.train.y[:10_000], splits.test
    factory = model_factory("cnn", "image")
    surrogates = [TorchClassifier(factory, config=_r8_config(seed + 1000 + j)).fit(X, y)
                  for j in range(R8_SURROGATES)]
    rng = np.random.default_rng(seed)
    surrogate_correct = [m.predict(te.X) == te.y for m in surrogates]
    right = np.flatnonzero(surrogate_correct[0])
    hits, losses, accs, p_adv, craft_s = [], [], [], [], 0.0
    for k, t in enumerate(rng.choice(right, R8_TARGETS, replace=False)):
        adv = int((te.y[t] + 1 + rng.integers(9)) % 10)
        atk = GradientMatching(adversarial_class=adv, n_poison=100, eps=16 / 255, steps=250,
                               selection=R8_SELECTION, random_state=seed * 100 + k)
        t0 = time.perf_counter()
        res = atk.poison(X, y, model=surrogates, target_input=te.X[t])
        craft_s += time.perf_counter() - t0
        victim = TorchClassifier(factory, config=_r8_config(seed * 100 + k)).fit(res.X, res.y)
        proba = victim.predict_proba(te.X[t:t + 1])[0]
        hits.append(int(np.argmax(proba)) == adv)
        p_adv.append(float(proba[adv]))
        losses.append(res.info["alignment_loss"])
        accs.append(float(np.mean(victim.predict(te.X) == te.y)))
        if progress is not None:
            progress("R8", "target", {"done": k + 1, "total": R8_TARGETS, "hit": hits[-1],
                                      "p_adversarial": p_adv[-1]})
    return {"success_rate": float(np.mean(hits)), "per_target": [bool(h) for h in hits],
            "victim_probability_of_adversarial_class": p_adv,
            "alignment_loss_mean": float(np.mean(losses)), "alignment_loss_per_target": losses,
            "victim_clean_accuracy": float(np.mean(accs)),
            "surrogate_clean_accuracy": [float(np.mean(c)) for c in surrogate_correct],
            "crafting_seconds_per_poison": craft_s / (100 * R8_TARGETS)}
