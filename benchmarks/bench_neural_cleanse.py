"""Neural Cleanse with its defaults: false alarms on clean models, detection on backdoored ones.

For every dataset and seed, a clean CNN and a backdoored one are trained through the library
with the demo's settings (``cnn``, Adam lr 3e-3, batch 64; BadNets on 10% of the training set,
target 0, the 3x3 bottom-right square; optionally Blended), and ``NeuralCleanse(random_state=seed)``
-- every other parameter at its default -- inspects each on the first ``n_clean`` clean test
images. A clean model counts as a false positive when any class is flagged; a backdoored one as
detected when its target class is flagged (and "alone" when nothing else is).

- digits (scikit-learn's 8x8 digits: 1,347 train / 450 test): 30 epochs, the demo's settings,
  all 450 test images (``scan-model``'s n_clean 500 capped by the split).
- fashion-mnist: the first ``--fmnist-train`` training images (a subset, to fit 2 shared cores),
  ``--fmnist-epochs`` epochs, 300 clean test images.

Each model also records what a 20-epoch cap (``scan-model``'s ``--epochs`` default) would have
given: the first 20 epochs of a run are the same with either cap, so it is read off
``history_``. With ``--baseline`` the implementation before this change (git 1b8a65c, epochs 20
and 100) inspects the clean digits models too, for the before/after comparison.

The MAD rule's behaviour on 10 classes under a null of independent normal norms is simulated
(no model): the share of "clean" draws the paper's rule flags.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_neural_cleanse.py [--baseline]
      [--datasets digits,fashion-mnist] [--seeds 5] [--attacks badnets,blended]
Writes benchmarks/results/neural_cleanse_fpr.json after every model and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from common import ROOT, data_dir, environment, write_json

from poisonlab.defenses.model import NeuralCleanse
from poisonlab.defenses.model.neural_cleanse import INDEX_THRESHOLD, anomaly_index

BASELINE_COMMIT = "1b8a65c"
RESULT = "neural_cleanse_fpr.json"


def load_splits(name: str, n_train: int):
    from poisonlab.data import load_digits, load_fashion_mnist, load_mnist

    if name == "digits":
        return load_digits()
    from poisonlab.data.dataset import Splits

    splits = (load_fashion_mnist if name == "fashion-mnist" else load_mnist)(data_dir())
    return Splits(train=splits.train.subset(np.arange(n_train)), test=splits.test)


def make_attack(name: str, seed: int):
    from poisonlab.attacks.data import BadNets, Blended

    if name == "badnets":
        return BadNets(target=0, poison_rate=0.1, random_state=seed)
    if name == "blended":
        return Blended(target=0, poison_rate=0.1, random_state=seed)
    raise ValueError(name)


def train(X, y, *, epochs: int, seed: int):
    from poisonlab.models import TorchClassifier, TrainConfig
    from poisonlab.models.architectures import model_factory

    return TorchClassifier(model_factory("cnn", "image"),
                           config=TrainConfig(epochs=epochs, lr=3e-3, batch_size=64, seed=seed)).fit(X, y)


def asr(clf, attack, test) -> float:
    keep = test.y != attack.target
    return float((clf.predict(attack.apply_trigger(test.X[keep])) == attack.target).mean())


def inspect(clf, X, seed: int) -> dict:
    """NeuralCleanse with its defaults, and what a 20-epoch cap would have said."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nc = NeuralCleanse(random_state=seed).fit(X, model=clf)
    seconds = time.perf_counter() - t0
    best20 = nc.history_["best_l1"][min(19, len(nc.history_["best_l1"]) - 1)]
    done20 = nc.converged_ & (nc.epochs_run_ <= 20)
    best20 = np.where(np.isnan(best20), nc.l1_norms_, best20)  # stopped before epoch 20: its final best
    idx20 = anomaly_index(best20) if np.isfinite(best20).all() else None
    return {
        "l1_norms": nc.l1_norms_.round(4).tolist(), "anomaly_index": nc.scores_.round(4).tolist(),
        "flagged": np.flatnonzero(nc.flags_).tolist(), "conclusive": bool(nc.conclusive_),
        "warning": nc.warning_, "warnings_raised": len(caught),
        "reached_threshold": nc.reached_threshold_.tolist(), "success_rates": nc.success_rates_.round(4).tolist(),
        "converged": nc.converged_.tolist(), "epochs_run": nc.epochs_run_.tolist(),
        "max_index": float(nc.scores_.max()), "seconds": seconds,
        "cap_20_epochs": {"conclusive": bool(done20.all()),
                          "anomaly_index": None if idx20 is None else idx20.round(4).tolist(),
                          "would_flag_by_index": None if idx20 is None else np.flatnonzero(idx20 > INDEX_THRESHOLD).tolist()},
    }


def baseline_class():
    """NeuralCleanse as it was at BASELINE_COMMIT (read from git, imported from a temp file)."""
    src = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:src/poisonlab/defenses/model/neural_cleanse.py"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    src = src.replace("from ...", "from poisonlab.").replace("from poisonlab.registry import register\n", "")
    src = src.replace('@register("detector", "neural_cleanse")\n', "")
    path = Path(tempfile.mkdtemp()) / "nc_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("nc_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.NeuralCleanse


def baseline(cls, clf, X, seed: int) -> dict:
    out = {}
    for epochs in (20, 100):
        nc = cls(epochs=epochs, random_state=seed).fit(X, model=clf)
        rates = []
        with torch.no_grad():
            for t in range(len(nc.l1_norms_)):
                pred = clf.module_(torch.as_tensor(nc.apply_reversed_trigger(X, t))).argmax(1)
                rates.append(float((pred == t).float().mean()))
        out[f"epochs_{epochs}"] = {"l1_norms": nc.l1_norms_.round(4).tolist(),
                                   "anomaly_index": nc.scores_.round(4).tolist(),
                                   "flagged": np.flatnonzero(nc.flags_).tolist(),
                                   "epochs_run": nc.epochs_run_.tolist(),
                                   "measured_success_rates": np.round(rates, 4).tolist()}
    return out


def mad_null(n_classes: int = 10, draws: int = 200_000, seed: int = 0) -> dict:
    """Share of draws of n independent normal 'norms' in which the paper's rule flags a class."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(draws, n_classes))
    med = np.median(x, axis=1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(x - med), axis=1, keepdims=True)
    top = ((med - x) / mad).max(axis=1)
    return {"n_classes": n_classes, "draws": draws,
            "share_flagged_by_threshold": {str(t): float((top > t).mean()) for t in (2.0, 2.5, 3.0, 3.5)},
            "mean_mad_over_sd": float(mad.mean())}


def summarize(models: list[dict]) -> list[dict]:
    rows = []
    for key in sorted({(m["dataset"], m["attack"] or "clean") for m in models}):
        ms = [m for m in models if (m["dataset"], m["attack"] or "clean") == key]
        nc = [m["neural_cleanse"] for m in ms]
        row = {"dataset": key[0], "model": key[1], "n": len(ms),
               "flagged_any": sum(bool(r["flagged"]) for r in nc),
               "inconclusive": sum(not r["conclusive"] for r in nc),
               "max_index": [round(r["max_index"], 2) for r in nc],
               "cap_20_conclusive": sum(r["cap_20_epochs"]["conclusive"] for r in nc),
               "clean_accuracy": float(np.mean([m["clean_accuracy"] for m in ms]))}
        if key[1] != "clean":
            row["target_flagged"] = sum(m["target"] in r["flagged"] for m, r in zip(ms, nc))
            row["target_alone"] = sum(r["flagged"] == [m["target"]] for m, r in zip(ms, nc))
            row["target_index"] = [round(r["anomaly_index"][m["target"]], 2) for m, r in zip(ms, nc)]
            row["asr"] = float(np.mean([m["asr"] for m in ms]))
            row["clean_model_asr"] = float(np.mean([m["clean_model_asr"] for m in ms]))
        rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="digits,fashion-mnist")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--attacks", default="badnets")
    ap.add_argument("--baseline", action="store_true", help=f"also run the implementation of {BASELINE_COMMIT}")
    ap.add_argument("--fmnist-train", type=int, default=4000)
    ap.add_argument("--fmnist-epochs", type=int, default=4)
    ap.add_argument("--resume", action="store_true", help="keep the models already in the result file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    settings = {"digits": {"epochs": 30, "n_clean": 500, "n_train": None},
                "fashion-mnist": {"epochs": args.fmnist_epochs, "n_clean": 300, "n_train": args.fmnist_train},
                "mnist": {"epochs": args.fmnist_epochs, "n_clean": 300, "n_train": args.fmnist_train}}
    res = {"description": "Neural Cleanse (defaults) on clean and backdoored CNNs: false positives and detection",
           "settings": settings, "neural_cleanse_defaults": NeuralCleanse().get_params(),
           "mad_null_simulation": mad_null(), "models": []}
    path = ROOT / "benchmarks" / "results" / RESULT
    if args.resume and path.is_file():
        import json

        res["models"] = json.loads(path.read_text())["models"]
    done = {(m["dataset"], m["seed"], m["attack"]) for m in res["models"]}
    base_cls = baseline_class() if args.baseline else None
    for name in args.datasets.split(","):
        cfg = settings[name]
        splits = load_splits(name, cfg["n_train"])
        Xc = splits.test.X[:cfg["n_clean"]]
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            clean = train(splits.train.X, splits.train.y, epochs=cfg["epochs"], seed=seed)
            train_s = time.perf_counter() - t0
            for attack_name in [None, *args.attacks.split(",")]:
                if (name, seed, attack_name) in done:
                    continue
                entry = {"dataset": name, "seed": seed, "attack": attack_name, "n_train": len(splits.train),
                         "n_clean": len(Xc)}
                if attack_name is None:
                    clf, entry["train_seconds"] = clean, train_s
                else:
                    atk = make_attack(attack_name, seed)
                    p = atk.poison(splits.train.X, splits.train.y)
                    t0 = time.perf_counter()
                    clf = train(p.X, p.y, epochs=cfg["epochs"], seed=seed)
                    entry["train_seconds"] = time.perf_counter() - t0
                    entry["target"] = atk.target
                    entry["asr"] = asr(clf, atk, splits.test)
                    entry["clean_model_asr"] = asr(clean, atk, splits.test)
                entry["clean_accuracy"] = float((clf.predict(splits.test.X) == splits.test.y).mean())
                entry["neural_cleanse"] = inspect(clf, Xc, seed)
                if base_cls is not None and attack_name is None and name == "digits":
                    entry["baseline_" + BASELINE_COMMIT] = baseline(base_cls, clf, Xc, seed)
                res["models"].append(entry)
                res["summary"] = summarize(res["models"])
                res["environment"] = environment()
                write_json(RESULT, res)
                r = entry["neural_cleanse"]
                print(f"{name} seed {seed} {attack_name or 'clean'}: flagged {r['flagged']} conclusive "
                      f"{r['conclusive']} max index {r['max_index']:.2f} epochs {max(r['epochs_run'])} "
                      f"({r['seconds']:.0f} s)", flush=True)
    print("\n| dataset | model | n | flagged (any class) | target flagged (alone) | inconclusive | "
          "max index per model | conclusive at 20 epochs |\n|---|---|---|---|---|---|---|---|")
    for row in res["summary"]:
        tgt = f"{row['target_flagged']} ({row['target_alone']})" if "target_flagged" in row else "-"
        print(f"| {row['dataset']} | {row['model']} | {row['n']} | {row['flagged_any']} | {tgt} | "
              f"{row['inconclusive']} | {row['max_index']} | {row['cap_20_conclusive']} |")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
