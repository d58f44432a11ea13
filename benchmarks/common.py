"""Shared set-up for the benchmarks: the poisoned MNIST and the features both tools read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"


def data_dir() -> Path:
    return Path(os.environ.get("POISONLAB_DATA_DIR", ROOT.parent / "shared" / "datasets"))


def environment() -> dict:
    """The run layer's environment (git commit and dirty flag, package versions, threads, the
    exact argv, platform): every benchmark JSON says what produced it."""
    from poisonlab.runs.record import environment as run_environment

    return run_environment()


def poisoned_mnist_features(*, n_poison: int = 600, hidden: int = 128, epochs: int = 3, seed: int = 0):
    """BadNets (3x3 square -> 7) on all 60,000 MNIST training digits, R1's CNN trained on them, and
    its penultimate features. Cached under benchmarks/.cache (features, labels, mask)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"mnist_badnets_n{n_poison}_h{hidden}_e{epochs}_s{seed}.npz"
    if path.is_file():
        z = np.load(path)
        return z["F"], z["y"], z["mask"], {"cached": True}
    from poisonlab.attacks.data import BadNets
    from poisonlab.data import load_mnist
    from poisonlab.models import TorchClassifier, TrainConfig, build_model

    train = load_mnist(data_dir()).train
    res = BadNets(target=7, n_poison=n_poison, value=1.0, random_state=seed).poison(train.X, train.y)
    t0 = time.perf_counter()
    clf = TorchClassifier(lambda s: build_model("strip-mnist-cnn", s, hidden=hidden),
                          config=TrainConfig(epochs=epochs, seed=seed)).fit(res.X, res.y)
    F = clf.embed(res.X)
    meta = {"cached": False, "train_seconds": time.perf_counter() - t0}
    np.savez(path, F=F, y=res.y, mask=res.poison_mask)
    return F, res.y, res.poison_mask, meta


def write_json(name: str, obj: dict) -> Path:
    from poisonlab.reports import atomic_write_json

    return atomic_write_json(RESULTS / name, obj)


def poisoned_mnist_model(*, n_poison: int = 600, epochs: int = 3, seed: int = 0):
    """R1's CNN trained on BadNets-poisoned MNIST (60,000), weights cached as safetensors.
    Returns (TorchClassifier, attack, test split)."""
    from safetensors.torch import load_file, save_file

    from poisonlab.attacks.data import BadNets
    from poisonlab.data import load_mnist
    from poisonlab.models import ModelSpec, TorchClassifier, TrainConfig, build_model

    CACHE.mkdir(parents=True, exist_ok=True)
    splits = load_mnist(data_dir())
    atk = BadNets(target=7, n_poison=n_poison, value=1.0, random_state=seed)
    res = atk.poison(splits.train.X, splits.train.y)
    path = CACHE / f"mnist_badnets_model_n{n_poison}_e{epochs}_s{seed}.safetensors"
    if path.is_file():
        module = build_model("strip-mnist-cnn", ModelSpec((1, 28, 28), 10))
        module.load_state_dict(load_file(str(path)))
        return TorchClassifier.from_trained(module.eval()), atk, splits.test
    clf = TorchClassifier(lambda s: build_model("strip-mnist-cnn", s),
                          config=TrainConfig(epochs=epochs, seed=seed)).fit(res.X, res.y)
    save_file({k: v.contiguous() for k, v in clf.module_.state_dict().items()}, str(path))
    return clf, atk, splits.test
