"""Our optimising attacks against ART 1.20.1's implementations, same model and data, one run.

  svm               Biggio's gradient attack on a linear SVM (MNIST 7 vs 1, 100 train / 500
                    validation, 1 point from the same start): test error and time.
  label_consistent  PGD on 500 class-7 MNIST images against the same surrogate, eps 0.3,
                    100 steps: crafting time per poison, the surrogate's error on the crafted
                    images (PGD's objective), and the ASR of a victim trained on each poisoned
                    set (20,000 digits, 5 epochs).
  feature_collision R7's setting (frozen Fashion-MNIST extractor, 100-per-class head), 5 poisons,
                    5 targets: success and time per poison.
  gradient_matching R8's setting (CIFAR-10 part, 2-conv ConvNet), 100 poisons, eps 16/255, one
                    restart, 3 targets: success and time per poison.

Run:  POISONLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/bench_attacks.py [part ...]
(needs `pip install -c constraints.txt -e '.[bench]'`). Writes benchmarks/results/attacks_<part>.json.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from common import data_dir, environment, write_json


def art_torch(module, input_shape, n_classes, clip=(0.0, 1.0)):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=module, loss=torch.nn.CrossEntropyLoss(), input_shape=input_shape,
                             nb_classes=n_classes, clip_values=clip,
                             optimizer=torch.optim.Adam(module.parameters(), lr=1e-3))


def svm() -> dict:
    from art.attacks.poisoning import PoisoningAttackSVM
    from art.estimators.classification.scikitlearn import ScikitlearnSVC
    from sklearn.svm import SVC

    from poisonlab.attacks.data import SVMPoisoning
    from poisonlab.data import load_mnist

    sp = load_mnist(data_dir())
    rows = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        pool = np.flatnonzero(np.isin(sp.train.y[:50_000], (1, 7)))
        pick = rng.choice(pool, 600, replace=False)
        flat = lambda X: X.reshape(len(X), -1).astype(np.float64)  # noqa: E731
        Xtr, ytr = flat(sp.train.X[pick[:100]]), (sp.train.y[pick[:100]] == 7).astype(int)
        Xv, yv = flat(sp.train.X[pick[100:]]), (sp.train.y[pick[100:]] == 7).astype(int)
        tm = np.isin(sp.test.y, (1, 7))
        Xte, yte = flat(sp.test.X[tm]), (sp.test.y[tm] == 7).astype(int)
        err = lambda X, y: float(np.mean(SVC(kernel="linear", C=1.0).fit(X, y).predict(Xte) != yte))  # noqa: E731
        t0 = time.perf_counter()
        ours = SVMPoisoning(n_poison=1, step_size=0.1, max_iter=200, random_state=seed).poison(Xtr, ytr, X_val=Xv, y_val=yv)
        t_ours = time.perf_counter() - t0
        j = int(np.random.default_rng(seed).integers(len(Xtr)))  # our start: training point j, label flipped
        onehot = lambda y: np.eye(2)[y]  # noqa: E731
        # ART 1.20.1 reads predict_proba while attacking: it needs probability=True (Platt scaling
        # on top of the same SVM; its time is part of ART's cost)
        clf = ScikitlearnSVC(SVC(kernel="linear", C=1.0, probability=True), clip_values=(0.0, 1.0))
        clf.fit(Xtr, onehot(ytr))
        art = PoisoningAttackSVM(clf, step=0.1, eps=1.0, x_train=Xtr, y_train=onehot(ytr), x_val=Xv,
                                 y_val=onehot(yv), max_iter=200, verbose=False)
        t0 = time.perf_counter()
        xa, ya = art.poison(Xtr[j:j + 1], y=onehot(1 - ytr[j:j + 1]))
        t_art = time.perf_counter() - t0
        rows.append({"seed": seed, "clean_error": err(Xtr, ytr),
                     "ours": {"test_error": err(ours.X, ours.y), "seconds": t_ours},
                     "art": {"test_error": err(np.r_[Xtr, xa], np.r_[ytr, np.argmax(ya, 1)]), "seconds": t_art}})
        print(rows[-1], flush=True)
    return {"setting": "MNIST 7 vs 1, 100 train / 500 validation, linear SVC C=1, one attack point from "
                       "the same flipped training point, step 0.1, at most 200 steps", "per_seed": rows}


def label_consistent() -> dict:
    from art.attacks.poisoning import PoisoningAttackBackdoor, PoisoningAttackCleanLabelBackdoor

    from poisonlab.attacks.data import LabelConsistent
    from poisonlab.attacks.triggers import patch_pattern, stamp_patch
    from poisonlab.data import load_mnist
    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.evaluation.metrics import backdoor_metrics
    from poisonlab.models import TorchClassifier, TrainConfig

    sp = load_mnist(data_dir())
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(50_000, 20_000, replace=False))
    X, y = sp.train.X[sub], sp.train.y[sub]
    factory = model_factory("strip-mnist-cnn", "image")
    surrogate = TorchClassifier(factory, config=TrainConfig(epochs=5, seed=1)).fit(sp.train.X[50_000:], sp.train.y[50_000:])
    n = 500
    ours_atk = LabelConsistent(target=7, n_poison=n, eps=0.3, steps=100, step_size=0.03, random_state=0)
    t0 = time.perf_counter()
    ours = ours_atk.poison(X, y, model=surrogate)
    t_ours = time.perf_counter() - t0
    # ART: the same 500 images (ART poisons pp_poison of what it is given, so give it exactly them)
    idx = ours.indices
    trigger = lambda Z: stamp_patch(Z, patch_pattern("square", 3), "bottom-right", value=1.0)  # noqa: E731
    backdoor = PoisoningAttackBackdoor(trigger)
    proxy = art_torch(surrogate.module_, (1, 28, 28), 10)
    onehot7 = np.eye(10)[7]
    # ART refuses pp_poison = 1 and draws its poisons *with replacement* (np.random.choice), so
    # of the 500 images it is given it perturbs only the distinct draws: counted below.
    art = PoisoningAttackCleanLabelBackdoor(backdoor, proxy, onehot7, pp_poison=0.999, norm=np.inf, eps=0.3,
                                            eps_step=0.1 * 0.3, max_iter=100)
    np.random.seed(0)
    t0 = time.perf_counter()
    xa, _ = art.poison(X[idx], np.eye(10)[y[idx]])
    t_art = time.perf_counter() - t0
    art_touched = int(np.any(xa.reshape(n, -1) != X[idx].reshape(n, -1), axis=1).sum())
    Xart = X.copy()
    Xart[idx] = xa.astype(X.dtype)

    def objective(Z):  # surrogate error on the crafted images without the patch region
        Zc = Z.copy()
        Zc[:, :, 25:, 25:] = X[idx][:, :, 25:, 25:]
        return float(np.mean(surrogate.predict(Zc) != 7))

    out = {}
    for name, Xp, secs in (("ours", ours.X, t_ours), ("art", Xart, t_art)):
        touched = n if name == "ours" else art_touched
        victim = TorchClassifier(factory, config=TrainConfig(epochs=5, seed=0)).fit(Xp, y)
        m = backdoor_metrics(victim, ours_atk, sp.test.X, sp.test.y, 10)
        out[name] = {"images_perturbed": touched, "seconds_per_poison": secs / touched,
                     "surrogate_error_on_poisons": objective(Xp[idx]),
                     "victim_asr": m["attack_success_rate"], "victim_clean_accuracy": m["clean_accuracy"],
                     "linf": float(np.abs(Xp[idx][:, :, :25, :25] - X[idx][:, :, :25, :25]).max())}
        print(name, out[name], flush=True)
    return {"setting": "MNIST 20,000 training digits; 500 class-7 images; surrogate R1's CNN on the 10,000 "
                       "held-out digits; PGD L-inf eps 0.3, step 0.03, 100 steps; 3x3 white patch; victim "
                       "R1's CNN 5 epochs", **out}


def feature_collision() -> dict:
    from art.attacks.poisoning import FeatureCollisionAttack
    from sklearn.linear_model import LogisticRegression

    from poisonlab.attacks.data import FeatureCollision
    from poisonlab.data import load_fashion_mnist
    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.models import TorchClassifier, TrainConfig

    sp = load_fashion_mnist(data_dir())
    tr, te = sp.train, sp.test
    low = tr.y < 5
    ext = TorchClassifier(model_factory("strip-mnist-cnn", "image"), config=TrainConfig(epochs=3, seed=0)).fit(
        tr.X[low], tr.y[low])
    rng = np.random.default_rng(0)
    hi = np.concatenate([rng.choice(np.flatnonzero(tr.y == c), 100, replace=False) for c in range(5, 10)])
    Xh, yh = tr.X[hi], tr.y[hi] - 5
    head = lambda X, y: LogisticRegression(C=100.0, max_iter=5000).fit(ext.embed(X), y)  # noqa: E731
    clean = head(Xh, yh)
    pool = np.flatnonzero(te.y >= 5)
    right = pool[clean.predict(ext.embed(te.X[pool])) == te.y[pool] - 5]
    art_clf = art_torch(ext.module_, (1, 28, 28), 5)
    rows = []
    for k, t in enumerate(rng.choice(right, 5, replace=False)):
        base = int((te.y[t] - 5 + 1 + rng.integers(4)) % 5)
        t0 = time.perf_counter()
        ours = FeatureCollision(base_class=base, n_poison=5, beta=0.01, lr=0.05, steps=1000, random_state=k).poison(
            Xh, yh, model=ext, target_input=te.X[t])
        t_ours = time.perf_counter() - t0
        bases = Xh[ours.indices]
        art = FeatureCollisionAttack(art_clf, te.X[t:t + 1], "embedding", max_iter=120, verbose=False)
        t0 = time.perf_counter()
        xa, _ = art.poison(bases, np.eye(5)[yh[ours.indices]])
        t_art = time.perf_counter() - t0
        Xart = Xh.copy()
        Xart[ours.indices] = xa.astype(Xh.dtype)
        hit = lambda Xp: int(head(Xp, yh).predict(ext.embed(te.X[t:t + 1]))[0]) == base  # noqa: E731
        fd = lambda Z: float(np.linalg.norm(ext.embed(Z) - ext.embed(te.X[t:t + 1]), axis=1).mean())  # noqa: E731
        rows.append({"target": int(t), "ours": {"success": hit(ours.X), "seconds_per_poison": t_ours / 5,
                                                "feature_distance": fd(ours.X[ours.indices])},
                     "art": {"success": hit(Xart), "seconds_per_poison": t_art / 5, "feature_distance": fd(xa)}})
        print(rows[-1], flush=True)
    return {"setting": "R7 (frozen Fashion-MNIST extractor, 100-per-class logistic head), 5 poisons from the "
                       "same bases; ours: beta 0.01, lr 0.05, 1,000 steps; ART: its defaults (max_iter 120)",
            "per_target": rows}


def gradient_matching() -> dict:
    from art.attacks.poisoning import GradientMatchingAttack

    from poisonlab.attacks.data import GradientMatching
    from poisonlab.data import load_cifar10
    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.models import TorchClassifier
    from poisonlab.reproductions.r08_gradient_matching import r8_config

    sp = load_cifar10(data_dir())
    X, y, te = sp.train.X[:10_000], sp.train.y[:10_000], sp.test
    factory = model_factory("cnn", "image")
    # R8's models (20 epochs, SGD); one surrogate, as ART's attack takes one model, and random
    # selection on both sides (ART draws its poisons at random from the class)
    cfg = r8_config
    sur = TorchClassifier(factory, config=cfg(1000)).fit(X, y)
    rng = np.random.default_rng(0)
    right = np.flatnonzero(sur.predict(te.X) == te.y)
    rows = []
    for k, t in enumerate(rng.choice(right, 3, replace=False)):
        adv = int((te.y[t] + 1 + rng.integers(9)) % 10)
        t0 = time.perf_counter()
        ours = GradientMatching(adversarial_class=adv, n_poison=100, eps=16 / 255, steps=250,
                                random_state=k).poison(X, y, model=sur, target_input=te.X[t])
        t_ours = time.perf_counter() - t0
        art = GradientMatchingAttack(art_torch(sur.module_, (3, 32, 32), 10), percent_poison=0.01, epsilon=16 / 255,
                                     max_trials=1, max_epochs=250, batch_size=128, verbose=0)
        t0 = time.perf_counter()
        xa, ya = art.poison(te.X[t:t + 1], np.eye(10)[[adv]], X, np.eye(10)[y])
        t_art = time.perf_counter() - t0
        res = {}
        for name, Xp, yp, secs in (("ours", ours.X, ours.y, t_ours), ("art", xa.astype(X.dtype), np.argmax(ya, 1), t_art)):
            victim = TorchClassifier(factory, config=cfg(k)).fit(Xp, yp)
            res[name] = {"success": int(victim.predict(te.X[t:t + 1])[0]) == adv, "seconds_per_poison": secs / 100,
                         "poisons_changed": int((np.abs(Xp - X).reshape(len(X), -1).max(axis=1) > 0).sum())}
        rows.append({"target": int(t), **res})
        print(rows[-1], flush=True)
    return {"setting": "R8's models (CIFAR-10 batch 1, 2-conv ConvNet 20 epochs, SGD), one surrogate, 1% poisons "
                       "drawn at random, eps 16/255, one restart, 250 steps; victims retrained from scratch",
            "per_target": rows}


PARTS = {"svm": svm, "label_consistent": label_consistent, "feature_collision": feature_collision,
         "gradient_matching": gradient_matching}


def main() -> None:
    for part in sys.argv[1:] or list(PARTS):
        out = PARTS[part]()
        out["environment"] = environment()
        write_json(f"attacks_{part}.json", out)


if __name__ == "__main__":
    main()
