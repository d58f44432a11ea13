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
            z = np.load(path, allow_pickle=True)  # this script's own cache (texts of old runs as objects)
            X = z["X"]
            return {"atk": None, "X": X.astype(str) if X.dtype == object else X, "y": z["y"], "mask": z["mask"], "F": z["F"],
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
        z = np.load(path, allow_pickle=True)  # this script's own cache (texts of old runs as objects)
        meta = json.loads(str(z["meta"]))
        if hasattr(atk, "apply_trigger") and not atk.needs:  # redraw a random trigger (seeded: identical)
            atk.poison(splits.train.X, splits.train.y)
        X = z["X"]
        return {"atk": atk, "X": X.astype(str) if X.dtype == object else X, "y": z["y"], "mask": z["mask"], "F": z["F"], "meta": meta,
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


def _dataset(name: str, splits, cell):
    from poisonlab.data import Dataset

    tr = splits.train
    n = len(cell["y"])
    ids = np.asarray(tr.ids).astype(str)
    if n > len(ids):
        ids = np.concatenate([ids, [f"injected-{k}" for k in range(n - len(ids))]])
    X = cell["X"]
    return Dataset(X=X, y=cell["y"], classes=tr.classes, modality=tr.modality, ids=ids[:n], name=tr.name,
                   info=dict(tr.info) if tr.modality == "audio" else {})


def _pr(q: np.ndarray, mask: np.ndarray) -> dict:
    tp = int((q & mask).sum())
    return {"n_quarantined": int(q.sum()), "true_positives": tp,
            "precision": tp / q.sum() if q.sum() else None, "recall": tp / mask.sum() if mask.sum() else None}


def retrained(name: str, splits, ds, keep: np.ndarray, atk, tidx) -> dict:
    """The reference model trained again without the quarantine, measured like the others."""
    model = train(name, ds.subset(keep))
    return measure(model, atk, splits, tidx)


def run_cell(name: str, splits, label: str, attack, params, clean, *, singles_retrain: bool) -> dict:
    """Scan one cell with every detector, the default combination among them, and retrain."""
    from poisonlab.defenses.data.evidence import quarantine_by_evidence, strongest_evidence
    from poisonlab.runs.scan import ALL_DETECTORS, DEFAULT_DETECTORS, scan

    t0 = time.perf_counter()
    cell = prepare(name, splits, label, attack, params, clean, clean)
    ds = _dataset(name, splits, cell)
    mask = np.asarray(cell["mask"], dtype=bool)
    t = time.perf_counter()
    r = scan(ds, features=cell["F"], detectors=ALL_DETECTORS, random_state=0)
    scan_s = time.perf_counter() - t
    # the default scan is the strongest evidence over DEFAULT_DETECTORS (each detector's fit is
    # independent of the others, so this is exactly scan(ds) with its defaults)
    E = np.stack([r.evidence[d] for d in DEFAULT_DETECTORS])
    strongest, by = strongest_evidence(E, DEFAULT_DETECTORS)
    q = quarantine_by_evidence(strongest)
    fams: dict[str, int] = {}
    for d in by[q]:
        fams[r.detector_families[d]] = fams.get(r.detector_families[d], 0) + 1
    meta = cell["meta"]
    out = {"dataset": name, "cell": label, "attack": attack, "params": params, "n_train": len(ds),
           "n_poison": int(mask.sum()), "target": meta.get("target"), "reference_model_cached": cell["cached"],
           "before": meta["before"], "clean_model": meta.get("clean_model"),
           "default": {**_pr(q, mask), "verdict": "poison suspected" if q.any() else "nothing found",
                       "families": fams, "by_detector": {d: int((by[q] == d).sum()) for d in DEFAULT_DETECTORS}},
           "single": {d: _pr(r.flags[d], mask) for d in ALL_DETECTORS},
           "auroc": {d: (r.evaluation or {}).get(d, {}).get("auroc") for d in ALL_DETECTORS},
           "scan_seconds": scan_s, "detector_seconds": {d: r.seconds[d] for d in ALL_DETECTORS}}
    atk, tidx = cell["atk"], cell["tidx"]
    # retraining on the same data with the same seed gives the same model: an empty quarantine
    # leaves the measures before removal
    out["default"]["after"] = retrained(name, splits, ds, ~q, atk, tidx) if q.any() else meta["before"]
    if singles_retrain and attack is not None:
        for d in ALL_DETECTORS:
            f = np.asarray(r.flags[d], dtype=bool)
            if f.any() and not np.array_equal(f, q):
                out["single"][d]["after"] = retrained(name, splits, ds, ~f, atk, tidx)
            else:
                out["single"][d]["after"] = out["default"]["after"] if f.any() else meta["before"]
    out["seconds"] = time.perf_counter() - t0
    return out


#: Cells whose single-detector quarantines are also retrained (the cheap models: digits).
SINGLES_RETRAIN = {"digits"}
#: FSDD's reference model is the slowest (a log-mel CNN on raw waveforms): clean data and the
#: modality's backdoor only, within the benchmark's CPU budget.
FSDD_ATTACKS = {None, "audio_trigger"}


def quality(names) -> dict:
    path = Path(__file__).resolve().parent / "results" / RESULT
    out = json.loads(path.read_text()) if path.is_file() else {}
    out.setdefault("cells", {})
    out.setdefault("skipped", {})
    for name in names:
        splits = load(name)
        models = {}

        def clean(name=name, splits=splits):
            if "clean" not in models:
                models["clean"] = train(name, splits.train)
            return models["clean"]

        cells, skipped = cells_of(name, splits)
        if name == "fsdd":
            for _, attack, _ in cells:
                if attack not in FSDD_ATTACKS:
                    skipped[attack] = "not run: FSDD's reference model (log-mel CNN on raw waveforms) is the " \
                                      "slowest to train; clean data and audio_trigger only, within the CPU budget"
            cells = [c for c in cells if c[1] in FSDD_ATTACKS]
        out["skipped"][name] = skipped
        for label, attack, params in cells:
            try:
                row = run_cell(name, splits, label, attack, params, clean, singles_retrain=name in SINGLES_RETRAIN)
            except Exception as exc:  # noqa: BLE001 - a cell that cannot run is reported, not hidden
                out["cells"][f"{name} / {label}"] = {"dataset": name, "cell": label, "error": f"{type(exc).__name__}: {exc}"}
                print(f"{name} / {label}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                continue
            out["cells"][f"{name} / {label}"] = row
            d = row["default"]
            print(f"{name} / {label}: P={d['precision']} R={d['recall']} Q={d['n_quarantined']} "
                  f"after={d['after']} ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
            out["environment"] = environment()
            row["command"] = " ".join(["python", *sys.argv])
            write_json(RESULT, out)  # after every cell: a stopped run keeps what it measured
    return out


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


#: The sample-level detectors the issue's speed target covers (subset_disagreement, added since,
#: trains ten models and is timed with the partition ensembles instead).
TIMED = ("spectral", "spectre", "activation_clustering", "label_issues", "knn_label", "robust_outliers", "duplicates")
#: The commit before this work: the "before" of the speed comparison.
BEFORE_COMMIT = "1b8a65c"


def time_detectors(n: int = 60_000, d: int = 512) -> dict:
    """Seconds of every sample-level detector of :data:`TIMED` (defaults) on the synthetic
    features, and its recall/precision/AUROC on the planted cluster."""
    from poisonlab import registry
    from poisonlab.evaluation.detection import auroc, precision_recall_f1

    path = CACHE / f"synthetic_{n}x{d}.npz"
    if path.is_file():
        z = np.load(path)
        F, y, mask = z["F"], z["y"], z["mask"]
    else:
        F, y, mask = synthetic_features(n, d)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, F=F, y=y, mask=mask)
    out = {}
    for name in TIMED:
        cls = registry.get("detector", name)
        t = time.perf_counter()
        det = cls().fit(F, y)
        dt = time.perf_counter() - t
        out[name] = {"seconds": dt, **precision_recall_f1(det.flags_, mask), "auroc": auroc(det.scores_, mask)}
        print(f"  {name}: {dt:.2f} s", file=sys.stderr, flush=True)
    out["total"] = sum(v["seconds"] for v in out.values())
    return out


def speed() -> dict:
    """Part 2: every sample-level detector on the synthetic 60,000 x 512 features, with this
    tree (after) and with :data:`BEFORE_COMMIT`'s tree in a subprocess (before), one after the
    other in the same conditions."""
    import subprocess
    import tempfile

    after = time_detectors()
    before = None
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", BEFORE_COMMIT, "src"], cwd=ROOT_DIR, capture_output=True,
                                 check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        env = {**__import__("os").environ, "PYTHONPATH": str(Path(tmp) / "src")}
        code = ("import json, sys; sys.path.insert(0, %r); import bench_scan_default as b; "
                "print(json.dumps(b.time_detectors()))" % str(Path(__file__).resolve().parent))
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if res.returncode == 0:
            before = json.loads(res.stdout.strip().splitlines()[-1])
        else:
            before = {"error": res.stderr[-2000:]}
    return {"setting": "synthetic 60,000 x 512 penultimate-like features (10 classes, 600 planted "
                       "poisons in class 7), every sample-level detector with its defaults",
            "threads": torch_threads(), "before_commit": BEFORE_COMMIT, "after": after, "before": before}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


ROOT_DIR = Path(__file__).resolve().parents[1]

SHORT = {"activation_clustering": "AC", "spectral": "spectral", "spectre": "SPECTRE", "robust_outliers": "MCD",
         "knn_label": "kNN", "label_issues": "CL", "label_issues@inputs": "CL@in", "duplicates": "dup"}


def _f(v, pct=False) -> str:
    if v is None:
        return "-"
    return f"{v:.0%}" if pct else f"{v:.2f}"


def _effect(m: dict | None) -> str:
    """What the attack wanted, in one cell: ASR, the target's class, or the source class's accuracy."""
    if not m:
        return "-"
    if "attack_success_rate" in m:
        return f"ASR {m['attack_success_rate']:.1%}"
    if "target_success" in m:
        return "target hit" if m["target_success"] else "target missed"
    if "source_class_accuracy" in m:
        return f"source acc {m['source_class_accuracy']:.1%}"
    return f"acc {m['clean_accuracy']:.1%}"


def markdown(out: dict) -> str:
    """The tables of docs/scan.md from the JSON."""
    from poisonlab.runs.scan import ALL_DETECTORS

    head = ("| data | attack | poisons | default scan: P / R (quarantined) | verdict (families) | "
            "before: clean acc, attack | after retraining | clean model | "
            + " | ".join(SHORT[d] for d in ALL_DETECTORS) + " |")
    rows = [head, "|" + "---|" * (8 + len(ALL_DETECTORS))]
    for key, c in out["cells"].items():
        if "error" in c:
            rows.append(f"| {c['dataset']} | {c['cell']} | | error: {c['error'][:80]} |" + " |" * (4 + len(ALL_DETECTORS)))
            continue
        d = c["default"]
        fam = ", ".join(f"{k} {v}" for k, v in d["families"].items())
        singles = []
        for det in ALL_DETECTORS:
            m = c["single"][det]
            cell = f"{_f(m['precision'])}/{_f(m['recall'])}" if m["n_quarantined"] else "0"
            if "after" in m and m["n_quarantined"] and "attack_success_rate" in m["after"]:
                cell += f" ({m['after']['attack_success_rate']:.0%})"
            singles.append(cell)
        rows.append(f"| {c['dataset']} | {c['cell']} | {c['n_poison']} | {_f(d['precision'])} / {_f(d['recall'])} "
                    f"({d['n_quarantined']}) | {d['verdict']}{' (' + fam + ')' if fam else ''} | "
                    f"{c['before']['clean_accuracy']:.1%}, {_effect(c['before'])} | "
                    f"{d['after']['clean_accuracy']:.1%}, {_effect(d['after'])} | {_effect(c.get('clean_model'))} | "
                    + " | ".join(singles) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="digits,mnist,sms-spam,adult,fsdd")
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--speed", action="store_true", help="also time every detector on 60,000 x 512")
    ap.add_argument("--only-speed", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", action="store_true", help="print the Markdown tables of the saved JSON")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.prepare_only:
        prepare_all(args.datasets.split(","))
        sys.exit(0)
    if args.table:
        print(markdown(json.loads((Path(__file__).resolve().parent / "results" / RESULT).read_text())))
        sys.exit(0)
    if not args.only_speed:
        print(markdown(quality(args.datasets.split(","))))
    if args.speed or args.only_speed:
        path = Path(__file__).resolve().parent / "results" / RESULT
        out = json.loads(path.read_text()) if path.is_file() else {}
        out["speed_60000x512"] = {**speed(), "command": " ".join(["python", *sys.argv])}
        out["environment"] = environment()
        write_json(RESULT, out)
