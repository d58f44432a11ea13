"""Availability poisoning against its L-inf budget (issue 20): R26's setting (the first 5,000
CIFAR-10 training images, R26's small CNN, 10 epochs), the whole training set poisoned, one
seed, eps in 2/255, 4/255, 8/255 and 16/255: class-targeted adversarial poisoning (Fowl et al.,
10 PGD steps of eps/4 against the clean-trained network) and sample-wise error-minimising noise
(Huang et al., R26's min-min settings with steps of eps/4). Prints a table and writes
benchmarks/results/availability_budget.json.

    .venv/bin/python benchmarks/availability_budget.py            # about 15 CPU minutes, one thread
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, environment, write_json  # noqa: E402

BUDGETS = (2, 4, 8, 16)
SEED = 0


def main() -> None:
    import torch

    from poisonlab.attacks.data import AdversarialPoisoning, Unlearnable
    from poisonlab.models import ModelSpec
    from poisonlab.reproductions import r26_availability as r26
    from poisonlab.reproductions.common import RunContext

    torch.set_num_threads(1)
    ctx = RunContext(data_dir=data_dir(), cache_dir=None, emit=lambda e: None, threads=1)
    splits = r26.load_r26_splits(ctx.data_dir)
    X, y, test = splits.train.X, splits.train.y, splits.test
    t0 = time.perf_counter()
    surrogate, clean = r26._victim(X, y, test, SEED, "clean", ctx)
    rows = [{"attack": "none", "eps_255": 0, **clean}]
    print(f"clean: {clean['test_accuracy']:.1%}")
    spec = ModelSpec(input_shape=tuple(X.shape[1:]), n_classes=splits.train.n_classes)
    for b in BUDGETS:
        eps = b / 255
        ap = AdversarialPoisoning(eps=eps, mode="class_targeted", steps=r26.R26_AP_STEPS, step_size=eps / 4,
                                  poison_rate=1.0, random_state=SEED).poison(X, y, model=surrogate)
        _, row = r26._victim(ap.X, y, test, SEED, f"adversarial {b}/255", ctx)
        rows.append({"attack": "adversarial class_targeted", "eps_255": b, **row,
                     "surrogate_fooled": ap.info["surrogate_fooled"]})
        print(f"adversarial class_targeted eps {b}/255: {row['test_accuracy']:.1%}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED + 1)
            net = r26._factory()(spec)
        ue = Unlearnable(eps=eps, mode="sample_wise", steps=r26.R26_UE_STEPS, step_size=eps / 4,
                         train_steps=r26.R26_UE_TRAIN_STEPS, max_iter=r26.R26_UE_MAX_ITER, poison_rate=1.0,
                         random_state=SEED).poison(X, y, model=net)
        _, row = r26._victim(ue.X, y, test, SEED, f"unlearnable {b}/255", ctx)
        rows.append({"attack": "unlearnable sample_wise", "eps_255": b, **row,
                     "iterations": ue.info["iterations"], "crafting_train_accuracy": ue.info["crafting_train_accuracy"]})
        print(f"unlearnable sample_wise eps {b}/255: {row['test_accuracy']:.1%}")
    out = {"benchmark": "availability_budget", "command": " ".join(sys.argv), "seed": SEED,
           "setting": r26.SETTING, "rows": rows, "seconds": time.perf_counter() - t0, "environment": environment()}
    print(f"wrote {write_json('availability_budget.json', out)} ({out['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
