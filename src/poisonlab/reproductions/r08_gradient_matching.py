"""R8: gradient matching (Witches' Brew, Geiping et al. 2021) on part of CIFAR-10.

Threat model: a targeted clean-label attack from scratch. The attacker perturbs 1% of the
training set (images of the adversarial class, eps 16/255, labels untouched) so that training
on them pushes the gradient toward classifying one chosen test image as the adversarial class;
it knows the architecture and training recipe and crafts on surrogates it trained itself. The
victim trains from scratch on the poisoned set.
"""

from __future__ import annotations

import numpy as np

from ..runs.events import TargetFinished
from .common import RunContext, mean_std

ID = "R8"
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
#: The training batch of the setting, and how many test images targets are drawn from.
R8_TRAIN_BATCHES = (1,)
R8_TEST_SIZE = 1000

TITLE = "Gradient matching (Witches' Brew), CIFAR-10 part, small ConvNet"
SETTING = ("CIFAR-10 data_batch_1 (10,000 images) to train, the 1,000 test images for targets; "
           f"2-conv ConvNet (32/64, hidden 128), SGD 0.05 (momentum 0.9, weight decay 5e-4, x0.1 at "
           f"1/2 and 3/4), {R8_EPOCHS} epochs; an ensemble of "
           f"{R8_SURROGATES} surrogates trained on the clean set (seeds unlike the victims'); per "
           "target (a test image the first surrogate classifies right, a random other adversarial "
           f"class) 100 poisons (1%) of the adversarial class (selection: {R8_SELECTION}), eps 16/255, 250 signed-Adam steps "
           "(step divided by 10 at 3/8, 5/8, 7/8) through random 2-pixel shifts, 1 restart; a "
           "victim retrained from scratch on each poisoned set. The first version (8 epochs, 1 "
           "surrogate, constant step) hit 1 of 10 (R8-8-epochs-superseded.json), the second (20 "
           "epochs, 2 surrogates, random selection) 2 of 10 (R8-2-surrogates-superseded.json), the "
           "third (3 surrogates, max_gradient, Adam 1e-3) 2 of 10 (R8-adam-superseded.json)")
PAPER = "Witches' Brew: ~90% on CIFAR-10 ResNet-18 (not verified)"
TARGET = "success rate reported; > 20%"
#: Expected CPU minutes per seed on one thread (84.4 min for 1 seed).
MINUTES = 84.4
DATA = ("cifar10",)


def r8_config(seed: int):
    """The paper's kind of training for surrogates and victims: SGD with (plain, not Nesterov)
    momentum 0.9, weight decay 5e-4, the step schedule (x0.1 at 1/2 and 3/4). Rate 0.05 fits
    this ConvNet as Adam 1e-3 did (seed 1, 20 epochs: 95% train / 63.1% test, against 0.01's
    60% / 54%). Adam's per-parameter scaling bends the poisons' gradient away from the
    direction they were matched to; SGD follows it (the third version used Adam:
    R8-adam-superseded.json).

    Examples
    --------
    >>> cfg = r8_config(7)
    >>> cfg.optimizer, cfg.lr, cfg.epochs, cfg.seed
    ('sgd', 0.05, 20, 7)
    """
    from ..models.training import TrainConfig

    return TrainConfig(epochs=R8_EPOCHS, batch_size=128, lr=0.05, optimizer="sgd", momentum=0.9,
                       weight_decay=5e-4, lr_schedule="step", seed=seed)


def run(seed: int, ctx: RunContext) -> dict:
    import time

    from ..attacks.data import GradientMatching
    from ..data import load_cifar10
    from ..models import TorchClassifier
    from ..models.architectures import model_factory

    splits = load_cifar10(ctx.data_dir, train_batches=R8_TRAIN_BATCHES)
    X, y = splits.train.X, splits.train.y
    te = splits.test.subset(np.arange(min(R8_TEST_SIZE, len(splits.test))))
    factory = model_factory("cnn", "image")
    surrogates = [TorchClassifier(factory, config=r8_config(seed + 1000 + j)).fit(X, y)
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
        victim = TorchClassifier(factory, config=r8_config(seed * 100 + k)).fit(res.X, res.y)
        proba = victim.predict_proba(te.X[t:t + 1])[0]
        hits.append(int(np.argmax(proba)) == adv)
        p_adv.append(float(proba[adv]))
        losses.append(res.info["alignment_loss"])
        accs.append(float(np.mean(victim.predict(te.X) == te.y)))
        ctx.emit(TargetFinished(label=ID, done=k + 1, total=R8_TARGETS,
                                info={"hit": hits[-1], "p_adversarial": p_adv[-1]}))
    return {"success_rate": float(np.mean(hits)), "per_target": [bool(h) for h in hits],
            "victim_probability_of_adversarial_class": p_adv,
            "alignment_loss_mean": float(np.mean(losses)), "alignment_loss_per_target": losses,
            "victim_clean_accuracy": float(np.mean(accs)),
            "surrogate_clean_accuracy": [float(np.mean(c)) for c in surrogate_correct],
            "crafting_seconds_per_poison": craft_s / (100 * R8_TARGETS)}


def summarize(runs: list[dict]) -> dict:
    rate = mean_std([r["success_rate"] for r in runs])
    return {"measured": {"success_rate": rate,
                         "victim_clean_accuracy": mean_std([r["victim_clean_accuracy"] for r in runs]),
                         "alignment_loss": mean_std([r["alignment_loss_mean"] for r in runs]),
                         "crafting_seconds_per_poison": mean_std([r["crafting_seconds_per_poison"] for r in runs])},
            "passed": rate["mean"] > 0.20,
            "verdict": f"{rate['mean']:.0%} of {R8_TARGETS} targets misclassified as the adversarial class "
                       f"(target > 20%)"}
