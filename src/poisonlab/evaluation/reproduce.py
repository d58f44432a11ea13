"""The reproduction suite: each entry of ``shared/REPRODUCTIONS.md`` as a function of a seed.

Adding an ID is one decorated function: it gets ``(seed, root, progress)``, returns the measured
numbers of one seed, and names a ``summarize`` that aggregates seeds and decides pass/fail
against the target. ``run_reproduction`` handles seeds, timing and the result record.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from ..exceptions import InvalidParameterError

Progress = Callable[[str, str, dict], None]


@dataclass(frozen=True)
class Reproduction:
    id: str
    title: str
    setting: str
    paper: str
    target: str
    run: Callable[[int, Any, Progress | None], dict]
    summarize: Callable[[list[dict]], dict]


REPRODUCTIONS: dict[str, Reproduction] = {}


def reproduction(id: str, *, title: str, setting: str, paper: str, target: str,
                 summarize: Callable[[list[dict]], dict]):
    """Register ``fn(seed, root, progress) -> dict`` as reproduction ``id``."""

    def deco(fn):
        REPRODUCTIONS[id] = Reproduction(id, title, setting, paper, target, fn, summarize)
        return fn

    return deco


def mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "n": int(arr.size)}


def run_reproduction(id: str, *, seeds: int = 3, root: Any = None,
                     progress: Progress | None = None) -> dict[str, Any]:
    """Run reproduction ``id`` over seeds ``0 .. seeds-1``; return a JSON-friendly record."""
    if id not in REPRODUCTIONS:
        raise InvalidParameterError(f"unknown reproduction {id!r}; available: {sorted(REPRODUCTIONS)}")
    if not isinstance(seeds, int) or seeds < 1:
        raise InvalidParameterError(f"seeds must be a positive int; got {seeds!r}")
    rep = REPRODUCTIONS[id]
    t0 = time.perf_counter()
    per_seed = []
    for seed in range(seeds):
        s0 = time.perf_counter()
        m = rep.run(seed, root, progress)
        m["seed"], m["seconds"] = seed, time.perf_counter() - s0
        per_seed.append(m)
        if progress is not None:
            progress(id, "seed", {"seed": seed, "seeds": seeds, "seconds": m["seconds"]})
    summary = rep.summarize(per_seed)
    import torch

    return {
        "id": rep.id, "title": rep.title, "setting": rep.setting, "paper": rep.paper,
        "target": rep.target, "seeds": seeds, "per_seed": per_seed,
        "measured": summary["measured"], "passed": bool(summary["passed"]),
        "verdict": summary.get("verdict", ""),
        "seconds": time.perf_counter() - t0,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads(), "machine": platform.machine()},
    }


# --- R1 / R2: BadNets on MNIST ------------------------------------------------------------------

@lru_cache(maxsize=2)
def _mnist(root: Any):
    from ..data import load_mnist

    splits = load_mnist(root)
    train_full = splits.train
    # R1's setting: 50,000 training digits; the other 10,000 are the clean validation split that
    # early stopping reads (the attacker does not touch it).
    return train_full.subset(np.arange(50_000)), train_full.subset(np.arange(50_000, 60_000)), splits.test


def _r1_config(seed: int):
    from ..models.training import TrainConfig

    return TrainConfig(epochs=20, batch_size=128, lr=1e-3, optimizer="adam", patience=3, seed=seed)


def _badnets_mnist(seed: int, **kw):
    from ..attacks.data import BadNets

    params = dict(target=7, n_poison=600, patch_size=3, location="bottom-right", pattern="square",
                  value=1.0, random_state=seed)
    params.update(kw)
    return BadNets(**params)


def _summarize_r1(runs: list[dict]) -> dict:
    clean = mean_std([r["poisoned"]["clean_accuracy"] for r in runs])
    asr = mean_std([r["poisoned"]["attack_success_rate"] for r in runs])
    base = mean_std([r["clean"]["clean_accuracy"] for r in runs])
    base_asr = mean_std([r["clean"]["attack_success_rate"] for r in runs])
    passed = clean["mean"] >= 0.985 and asr["mean"] >= 0.99
    return {"measured": {"clean_accuracy": clean, "attack_success_rate": asr,
                         "clean_model_accuracy": base, "clean_model_asr": base_asr},
            "passed": passed,
            "verdict": f"clean {clean['mean']:.2%} (target >= 98.5%), ASR {asr['mean']:.2%} (target >= 99%)"}


@reproduction(
    "R1", title="BadNets on MNIST",
    setting="MNIST, 3x3 white square bottom-right, all-to-one -> 7, 600 of 50,000 training digits "
            "(1.2%), 2conv+2dense CNN, Adam 1e-3, batch 128, <= 20 epochs with early stopping "
            "(patience 3) on the held-out clean 10,000",
    paper="STRIP (Gao et al. 2019) Table 2: clean 98.86%, ASR 99.86% (clean model 98.62%)",
    target="clean >= 98.5%, ASR >= 99%",
    summarize=_summarize_r1,
)
def _r1(seed: int, root: Any, progress: Progress | None) -> dict:
    from .experiment import run_backdoor

    train, val, test = _mnist(root)
    out = run_backdoor(train, test, _badnets_mnist(seed), architecture="strip-mnist-cnn",
                       config=_r1_config(seed), validation=val, progress=progress)
    out.pop("models"), out.pop("poison_result")
    return out


R2_RATES = (0.001, 0.005, 0.01, 0.05, 0.10)


def _summarize_r2(runs: list[dict]) -> dict:
    by_rate = {}
    for rate in R2_RATES:
        key = f"{rate:g}"
        by_rate[key] = {
            "attack_success_rate": mean_std([r["rates"][key]["attack_success_rate"] for r in runs]),
            "clean_accuracy": mean_std([r["rates"][key]["clean_accuracy"] for r in runs]),
        }
    asr = [by_rate[f"{r:g}"]["attack_success_rate"]["mean"] for r in R2_RATES]
    # "ASR rises with rate": non-decreasing up to 1 point of noise, and clearly higher at the top.
    rises = all(b >= a - 0.01 for a, b in zip(asr, asr[1:])) and asr[-1] > asr[0]
    return {"measured": {"by_rate": by_rate},
            "passed": rises,
            "verdict": "ASR by rate: " + ", ".join(f"{r:.1%}: {a:.2%}" for r, a in zip(R2_RATES, asr))}


@reproduction(
    "R2", title="BadNets poison-rate sweep on MNIST",
    setting="R1's setting with 0.1 / 0.5 / 1 / 5 / 10% of the 50,000 training digits poisoned",
    paper="BackdoorBench CIFAR-10 (PreAct-ResNet18): 1% 74.7, 5% 88.7, 10% 95.0 ASR",
    target="ASR rises with rate; a plot of ASR and clean accuracy vs rate",
    summarize=_summarize_r2,
)
def _r2(seed: int, root: Any, progress: Progress | None) -> dict:
    from .experiment import run_backdoor

    train, val, test = _mnist(root)
    rates = {}
    for rate in R2_RATES:
        atk = _badnets_mnist(seed, n_poison=int(round(rate * len(train))))
        out = run_backdoor(train, test, atk, architecture="strip-mnist-cnn", config=_r1_config(seed),
                           validation=val, clean_baseline=False, progress=progress)
        p = out["poisoned"]
        rates[f"{rate:g}"] = {"n_poison": out["attack"]["n_poison"],
                              "clean_accuracy": p["clean_accuracy"],
                              "attack_success_rate": p["attack_success_rate"],
                              "epochs_run": p["epochs_run"], "train_seconds": p["train_seconds"]}
    return {"rates": rates}
