"""The default data scan on every registered data-poisoning attack, beside each single detector.

For every (dataset, attack) cell -- each registered attack at its default settings on its
modality's default data (digits, MNIST, SMS Spam, Adult, FSDD), plus the README's round trip
(BadNets, ``poison_rate=0.05, value=1.0``, on digits):

1. poison the training split (attack ``random_state=0``, as ``poisonlab attack`` does);
2. train the scan's reference model on the poisoned data (as ``poisonlab scan-data`` does when
   given no model) and take its penultimate features;
3. scan with the default detectors and the default combination, and with each detector alone
   (its own flags are its quarantine);
4. retrain without the quarantine and measure clean accuracy and the attack's success (ASR for
   backdoors, the target's class for targeted attacks) beside the model trained on all of it and
   a clean model (the ASR a clean model already has on the same triggered inputs).

Attacks that need a surrogate get the clean model of the same dataset (the run layer's
convention); those that need a target input get the first test input outside their base class;
``svm_poisoning`` gets the test split as its validation set; ``subgroup_label_flip`` the raw
``sex`` column of Adult. Reference models, poisons and features are cached under
``benchmarks/.cache/scan_default/`` (keyed by dataset, attack, parameters, epochs and seed), so a
rerun measures only the scans and the retrainings.

Part 2 (``--speed``): every sample-level detector on synthetic 60,000 x 512 features with a
planted cluster (the size of R1's features), the time of each and of the whole default scan.

Run:  POISONLAB_DATA_DIR=../shared/datasets OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scan_default.py
      [--datasets digits,mnist,...] [--speed] [--only-speed]
Writes benchmarks/results/scan_default.json (after every cell) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import CACHE, data_dir, environment, write_json

CELL_CACHE = CACHE / "scan_default"
RESULT = "scan_default.json"

#: (dataset, loader kwargs, training subset, reference-model epochs, architecture)
DATASETS = {
    "digits": ({}, None, 10, None),
    "mnist": ({}, 10_000, 3, None),
    "sms-spam": ({}, None, 10, None),
    "adult": ({}, None, 10, None),
    "fsdd": ({"features": "waveform"}, None, 3, "audio-wave-cnn"),
}

#: The README's round trip, then every registered data-poisoning attack at its defaults.
README_CELL = ("badnets (README: poison_rate=0.05, value=1.0)", "badnets", {"poison_rate": 0.05, "value": 1.0})


def attacks_for(modality: str, n_classes: int) -> tuple[list[tuple[str, str, dict]], dict[str, str]]:
    """The cells of one dataset and the attacks left out with the reason."""
    from poisonlab import registry

    cells, skipped = [], {}
    for entry in registry.entries("attack"):
        cls = registry.get("attack", entry.name)
        if cls.stage != "data":
            skipped[entry.name] = f"stage '{cls.stage}': tampers with the training procedure, not the training set"
            continue
        if modality not in cls.modalities:
            continue
        if getattr(cls, "binary_only", False) and n_classes != 2:
            skipped[entry.name] = f"binary tasks only ({n_classes} classes here)"
            continue
        if entry.name == "subgroup_label_flip" and modality != "tabular":
            skipped[entry.name] = "needs a subgroup attribute (groups); only Adult has one here (sex)"
            continue
        if entry.name == "svm_poisoning" and modality == "tabular":
            skipped[entry.name] = ("up to max_iter=200 linear-SVC refits per point on the 32,561 rows of Adult: "
                                   "not finished after 5 CPU-minutes; meant for small linear-SVM settings (R9: 100 points)")
            continue
        if entry.name == "adversarial_label_flip":
            skipped[entry.name] = ("n_poison x max_candidates SVM fits (10% of the training set x 200): "
                                   "meant for hundreds of points, not thousands (its docstring's limit)")
            continue
        cells.append((entry.name, entry.name, {}))
    return cells, skipped


# --- cells: poison, reference model, features ------------------------------------------------

def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load(name: str):
    from poisonlab.data import load_dataset

    kwargs, n, _, _ = DATASETS[name]
    splits = load_dataset(name, data_dir(), **kwargs)
    if n is not None and n < len(splits.train):
        splits = replace(splits, train=splits.train.subset(np.arange(n)))
    return splits


def config_for(name: str):
    from poisonlab.models import TrainConfig

    return TrainConfig(epochs=DATASETS[name][2], seed=0)


def train(name: str, ds, config=None):
    """A reference model of the dataset's default architecture, as the scan trains it."""
    from poisonlab.runs.scan import representations

    _, model = representations(ds, architecture=DATASETS[name][3], config=config or config_for(name))
    return model


def _vocab(ds):
    if ds.modality != "text":
        return None
    from poisonlab.models.text import Vocabulary

    return Vocabulary()


def attack_needs(atk, splits, surrogate) -> dict:
    """What ``poison`` needs, by the run layer's conventions (see the module docstring)."""
    needs = {}
    for need in atk.needs:
        if need == "model":
            needs["model"] = surrogate().module_
        elif need == "target_input":
            needs["target_input"] = splits.test.X[target_index(atk, splits)]
        elif need in ("X_val", "y_val"):
            needs["X_val"], needs["y_val"] = splits.test.X, splits.test.y
        elif need == "groups":
            info = splits.train.info
            col = list(info["raw_columns"]).index("sex")
            needs["groups"] = np.array([str(r[col]).strip() for r in info["raw"]])
    return needs


def target_index(atk, splits) -> int | None:
    """The target of a targeted attack: the first test input outside its base class."""
    if "target_input" not in atk.needs:
        return None
    base = getattr(atk, "base_class", getattr(atk, "adversarial_class", 0))
    return int(np.flatnonzero(splits.test.y != base)[0])


def measure(model, atk, splits, tidx) -> dict:
    """Clean accuracy, and what the attack wanted: ASR (backdoors), the target input in the base
    class (targeted clean-label attacks), the source class's accuracy (targeted flips)."""
    from poisonlab.evaluation.metrics import backdoor_metrics, clean_accuracy

    test = splits.test
    pred = model.predict(test.X)
    out = {"clean_accuracy": clean_accuracy(test.y, pred)}
    if atk is not None and hasattr(atk, "apply_trigger"):
        m = backdoor_metrics(model, atk, test.X, test.y, test.n_classes)
        out["attack_success_rate"] = m["attack_success_rate"]
    if tidx is not None:
        base = getattr(atk, "base_class", getattr(atk, "adversarial_class", 0))
        out["target_success"] = bool(model.predict(test.X[tidx:tidx + 1])[0] == base)
    if atk is not None and type(atk).__name__ == "TargetedLabelFlip":
        src = test.y == atk.source
        out["source_class_accuracy"] = float((pred[src] == atk.source).mean())
    return out


def prepare(name: str, splits, label: str, attack: str, params: dict, surrogate, clean) -> dict:
    """Poison, train the reference model, take its features: cached per cell."""
    from poisonlab import registry

    key = _key(name, DATASETS[name], attack, params, 0)
    path = CELL_CACHE / f"{name}_{attack}_{key}.npz"
    if attack is None:  # clean data: the scan's false alarms
        if path.is_file():
            z = np.load(path, allow_pickle=False)
            return {"atk": None, "X": z["X"], "y": z["y"], "mask": z["mask"], "F": z["F"],
                    "meta": json.loads(str(z["meta"])), "tidx": None, "cached": True}
        model = clean()
        F = model.embed(splits.train.X)
        meta = {"n_poison": 0, "target": None, "before": measure(model, None, splits, None)}
        path.parent.mkdir(parents=True, exist_ok=True)
        X = np.asarray(splits.train.X)
        np.savez(path, X=X.astype(str) if X.dtype == object else X, y=splits.train.y,
                 mask=np.zeros(len(splits.train), bool), F=F.astype(np.float32), meta=json.dumps(meta))
        return prepare(name, splits, label, attack, params, surrogate, clean)
    atk = registry.create("attack", attack, **{"random_state": 0, **params})
    if "encoder" in atk._param_names() and getattr(splits, "encoder", None) is not None and "encoder" not in params:
        atk.set_params(encoder=splits.encoder)
    tidx = target_index(atk, splits)
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        if hasattr(atk, "apply_trigger") and not atk.needs:  # redraw a random trigger (seeded: identical)
            atk.poison(splits.train.X, splits.train.y)
        return {"atk": atk, "X": z["X"], "y": z["y"], "mask": z["mask"], "F": z["F"], "meta": meta,
                "tidx": tidx, "cached": True}
    t = time.perf_counter()
    res = atk.poison(splits.train.X, splits.train.y, **attack_needs(atk, splits, surrogate))
    poison_s = time.perf_counter() - t
    ds = splits.train.with_arrays(X=res.X, y=res.y) if len(res.y) == len(splits.train) else None
    if ds is None:
        from poisonlab.data import Dataset

        ids = np.concatenate([np.asarray(splits.train.ids).astype(str),
                              [f"injected-{k}" for k in range(len(res.y) - len(splits.train))]])
        ds = Dataset(X=res.X, y=res.y, classes=splits.train.classes, modality=splits.train.modality, ids=ids,
                     name=splits.train.name)
    t = time.perf_counter()
    model = train(name, ds)
    train_s = time.perf_counter() - t
    F = model.embed(ds.X)
    meta = {"n_poison": int(res.n_poison), "target": res.target, "poison_seconds": poison_s,
            "train_seconds": train_s, "before": measure(model, atk, splits, tidx),
            "clean_model": measure(clean(), atk, splits, tidx)}
    path.parent.mkdir(parents=True, exist_ok=True)
    Xp = np.asarray(res.X)
    np.savez(path, X=Xp.astype(str) if Xp.dtype == object else Xp, y=res.y, mask=res.poison_mask, F=F.astype(np.float32),
             meta=json.dumps(meta))
    return {"atk": atk, "X": np.asarray(res.X), "y": res.y, "mask": res.poison_mask, "F": F, "meta": meta,
            "tidx": tidx, "cached": False}


def cells_of(name: str, splits) -> tuple[list, dict]:
    cells, skipped = attacks_for(splits.train.modality, splits.train.n_classes)
    cells = [("none (clean data)", None, {}), *cells]
    if name == "digits":
        cells = [README_CELL, *cells]
    return cells, skipped


def prepare_all(names) -> None:
    for name in names:
        splits = load(name)
        models = {}

        def clean(name=name, splits=splits):
            if "clean" not in models:
                models["clean"] = train(name, splits.train)
            return models["clean"]

        cells, skipped = cells_of(name, splits)
        print(name, "skipped:", skipped, flush=True)
        for label, attack, params in cells:
            t = time.perf_counter()
            try:
                cell = prepare(name, splits, label, attack, params, clean, clean)
            except Exception as exc:  # noqa: BLE001 - a cell that cannot run is reported, not hidden
                print(f"  {label}: {type(exc).__name__}: {exc}", flush=True)
                continue
            print(f"  {label}: {cell['meta']['n_poison']} poisons, before {cell['meta']['before']}, "
                  f"clean {cell['meta'].get('clean_model')} ({time.perf_counter() - t:.1f} s)", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="digits,mnist,sms-spam,adult,fsdd")
    ap.add_argument("--prepare-only", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.prepare_only:
        prepare_all(args.datasets.split(","))


# --- part 2: speed on 60,000 x 512 ----------------------------------------------------------

def synthetic_features(n: int = 60_000, d: int = 512, n_classes: int = 10, n_poison: int = 600,
                       target: int = 7, seed: int = 0):
    """Penultimate-like features: per class a mean in a 32-d subspace, variation along 12
    class-specific directions and a little isotropic noise, through a ReLU (so some units are
    dead, as in a trained network's last hidden layer); ``n_poison`` samples of other classes
    relabelled ``target`` and moved along one direction (a backdoor's cluster, 1% of the data as
    in R1)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(32, d)) / np.sqrt(32)
    means = rng.normal(size=(n_classes, 32)) * 2.0
    load = rng.normal(size=(n_classes, 12, d)) / np.sqrt(d) * 2.0
    y = rng.integers(n_classes, size=n)
    F = means[y] @ basis
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        F[idx] += rng.normal(size=(len(idx), 12)) @ load[c]
    F += 0.05 * rng.normal(size=(n, d))
    idx = rng.choice(np.flatnonzero(y != target), n_poison, replace=False)
    F[idx] = means[target] @ basis + rng.normal(size=(n_poison, 12)) @ load[target] * 0.5 \
        + 1.5 * rng.normal(size=d) / np.sqrt(d) * np.sqrt(32) + 0.05 * rng.normal(size=(n_poison, d))
    y[idx] = target
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return np.maximum(F, 0.0).astype(np.float32), y, mask


def time_detectors(n: int = 60_000, d: int = 512) -> dict:
    """Seconds of every sample-level detector (defaults) on the synthetic features, and its
    recall/precision/AUROC on the planted cluster."""
    from poisonlab import registry
    from poisonlab.evaluation.detection import auroc, precision_recall_f1

    F, y, mask = synthetic_features(n, d)
    out = {}
    for name, cls in registry.available("detector").items():
        if cls.unit != "sample" or name == "combined":
            continue
        t = time.perf_counter()
        det = cls().fit(F, y)
        dt = time.perf_counter() - t
        out[name] = {"seconds": dt, **precision_recall_f1(det.flags_, mask), "auroc": auroc(det.scores_, mask)}
        print(f"  {name}: {dt:.2f} s", file=sys.stderr, flush=True)
    out["total"] = sum(v["seconds"] for v in out.values())
    return out
