"""R22: FoolsGold against sybils (Fung, Yoon & Beschastnikh, RAID 2020).

Threat model: an attacker runs 5 sybil clients that share one poisoning objective: each holds
MNIST's training 1s relabelled 7 (a targeted label flip). The 10 honest clients are non-IID, one
digit each, so honest updates differ from each other while the sybils' updates look alike:
FoolsGold down-weights clients whose historical updates are too similar (cosine similarity of
their summed updates, with pardoning and a logit). The paper: FedAvg's attack rate ~100%,
FoolsGold's ~0%.

Built directly on :func:`~poisonlab.federated.run_federation` (the clients are hand-made, not a
partition of one split), one run per aggregator and seed.
"""

from __future__ import annotations

import numpy as np

from .common import RunContext, mean_std

ID = "R22"
TITLE = "FoolsGold against 5 label-flipping sybils"
SETTING = ("MNIST's first 50,000 training digits; 10 honest clients, client d holds every training digit d "
           "(non-IID, one digit each); 5 sybils, each holding all the training 1s labelled 7; softmax "
           "regression (784-10); 150 rounds of FedSGD (every client, one gradient on 64 of its samples, lr "
           "0.5); FedAvg (uniform weights) vs FoolsGold (kappa 1); attack rate = the fraction of test 1s "
           "classified as 7")
PAPER = "FedAvg attack rate ~100% vs FoolsGold ~0% (Fung et al. 2020)"
TARGET = "FoolsGold attack rate <= 10% where FedAvg's >= 80%"
#: Expected CPU minutes per seed on one thread.
MINUTES = 1.5
DATA = ("mnist",)

N_SYBILS, SOURCE, TARGET_CLASS, ROUNDS = 5, 1, 7, 150


def sybil_clients(train) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """10 honest one-digit clients, then :data:`N_SYBILS` sybils with the 1s relabelled 7."""
    X, y = np.asarray(train.X), np.asarray(train.y)
    clients = [(X[y == d], y[y == d]) for d in range(10)]
    ones = X[y == SOURCE]
    sybils = [(ones, np.full(len(ones), TARGET_CLASS, dtype=y.dtype)) for _ in range(N_SYBILS)]
    return clients + sybils, list(range(10, 10 + N_SYBILS))


def softmax_regression(spec):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(spec.input_shape)), spec.n_classes))


def run(seed: int, ctx: RunContext) -> dict:
    from ..defenses.federated import FedAvg, FoolsGold
    from ..federated import FederationConfig, run_federation

    train, _val, test = ctx.mnist()
    clients, sybils = sybil_clients(train)
    Xt, yt = np.asarray(test.X), np.asarray(test.y)
    ones = yt == SOURCE
    config = FederationConfig(rounds=ROUNDS, mode="fedsgd", batch_size=64, lr=0.5, eval_every=ROUNDS)
    out = {}
    for name, agg in (("fedavg", FedAvg()), ("foolsgold", FoolsGold(kappa=1.0))):
        res = run_federation(softmax_regression, clients, (Xt, yt), aggregator=agg, config=config,
                             malicious=sybils, random_state=seed, n_classes=10)
        model = res.model()
        import torch

        with torch.no_grad():
            pred = model(torch.as_tensor(Xt[ones], dtype=torch.float32)).argmax(1).numpy()
        summary = res.summary()
        out[name] = {"attack_rate": float((pred == TARGET_CLASS).mean()), "accuracy": float(res.accuracy),
                     "detection_precision": summary["detection_precision"],
                     "detection_recall": summary["detection_recall"],
                     "sybil_weight_last_round": float(np.sum(np.asarray(res.history[-1].weights)[sybils]))
                     if len(res.history[-1].weights) == len(clients) else None}
    return out


def summarize(runs: list[dict]) -> dict:
    fa = mean_std([r["fedavg"]["attack_rate"] for r in runs])
    fg = mean_std([r["foolsgold"]["attack_rate"] for r in runs])
    acc = {k: mean_std([r[k]["accuracy"] for r in runs]) for k in ("fedavg", "foolsgold")}
    passed = fg["mean"] <= 0.10 and fa["mean"] >= 0.80
    seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
    return {"measured": {"attack_rate": {"fedavg": fa, "foolsgold": fg}, "accuracy": acc},
            "passed": passed,
            "verdict": (f"attack rate FedAvg {fa['mean']:.1%} (target >= 80%), FoolsGold {fg['mean']:.1%} "
                        f"(target <= 10%); accuracy {acc['fedavg']['mean']:.1%} / {acc['foolsgold']['mean']:.1%} "
                        f"({seeds})")}
