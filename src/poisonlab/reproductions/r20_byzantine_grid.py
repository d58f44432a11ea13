"""R20: robust aggregation against Byzantine clients on MNIST (the ALIE / IPM / FLTrust grid).

Threat model: 4 of 20 federated clients are Byzantine and omniscient (they see every honest
update of the round: ALIE, IPM) or see only their own (sign flip); the server runs one
aggregation rule. Published: "A Little Is Enough" (Baruch et al. 2019: 20% of workers cut
CIFAR-10 accuracy by 50% through median, Krum and Bulyan), "Fall of Empires" (Xie et al. 2020:
inner-product manipulation breaks Krum and the median), FLTrust (Cao et al. 2021: a server root
set of 100 samples keeps accuracy near the clean run).

R20 is a grid scenario (:func:`r20_scenario`: aggregator x attack, one seed per call) run
through the run layer; every cell is cached by its configuration, so a stopped run resumes and
R24 reuses R20's ALIE cells.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from ..runs.scenario import Scenario
from .common import RunContext, mean_std

ID = "R20"
TITLE = "Byzantine-robust aggregation vs ALIE, IPM and sign flip"
SETTING = ("MNIST (60,000 training digits less FLTrust's 100-sample root set, dealt IID to 20 clients; the "
           "10,000 test digits), MLP 784-100-10, 300 rounds of distributed SGD (every client, one gradient "
           "on 32 of its samples per round, lr 0.1, no momentum), 4 Byzantine clients (0-3); rules: mean, "
           "coordinate median, trimmed mean (f=4), Krum (f=4), Bulyan (f=4), FLTrust (100 root samples); "
           "attacks: none, ALIE (z from the paper, n=20, f=4), IPM (epsilon 0.1), sign flip (-1 x own)")
PAPER = ("ALIE: 20% of workers cut CIFAR-10 accuracy by 50%; IPM breaks Krum and the median; FLTrust "
         "stays near clean")
TARGET = ("IPM breaks Krum (>= 10 points below Krum without attack); ALIE hurts median, Krum and Bulyan "
          "(>= 2 points below each rule without attack); FLTrust within 8 points of the clean run (mean, "
          "no attack) under ALIE, IPM and sign flip")
#: Expected CPU minutes per seed on one thread (24 cells; 4.9-5.7 measured 2026-12-02 beside another job).
MINUTES = 6.0
DATA = ("mnist",)

N_CLIENTS, N_BYZANTINE, ROUNDS = 20, 4, 300
def _frozen(obj: Any) -> Any:
    """A read-only copy (mapping proxies and tuples) of a JSON-like constant."""
    if isinstance(obj, dict):
        return MappingProxyType({k: _frozen(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_frozen(v) for v in obj)
    return obj


def plain(obj: Any) -> Any:
    """:func:`_frozen`'s inverse: dicts and lists for a scenario."""
    if isinstance(obj, (dict, MappingProxyType)):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [plain(v) for v in obj]
    return obj


AGGREGATORS = _frozen({
    "mean": {"name": "fedavg"},
    "median": {"name": "median"},
    "trimmed_mean": {"name": "trimmed_mean", "params": {"f": N_BYZANTINE}},
    "krum": {"name": "krum", "params": {"f": N_BYZANTINE}},
    "bulyan": {"name": "bulyan", "params": {"f": N_BYZANTINE}},
    "fltrust": {"name": "fltrust"},
})
ATTACKS = _frozen({
    "none": None,
    "alie": {"name": "alie"},
    "ipm": {"name": "ipm", "params": {"epsilon": 0.1}},
    "sign_flip": {"name": "sign_flip", "params": {"scale": 1.0}},
})


def federation(**overrides: Any) -> dict[str, Any]:
    """R20's federation (the ``federation`` block of its scenario)."""
    return {"clients": N_CLIENTS, "partition": "iid", "rounds": ROUNDS, "mode": "fedsgd", "batch_size": 32,
            "lr": 0.1, "momentum": 0.0, "malicious": N_BYZANTINE, "server_data": 100, "eval_every": 25,
            **overrides}


def r20_scenario(seed: int, *, aggregators: Mapping[str, Any] | None = None,
                 attacks: Mapping[str, Any] | None = None, threads: int = 1, name: str = "R20",
                 **overrides: Any) -> Scenario:
    """R20's grid for ``seed``: every aggregator x every attack (a sweep over
    ``federation.aggregator`` and ``federation.attack``).

    Examples
    --------
    >>> s = r20_scenario(0)
    >>> s.federation.clients, s.federation.rounds, len(s.sweep.params["federation.aggregator"])
    (20, 300, 6)
    """
    aggregators = AGGREGATORS if aggregators is None else aggregators
    attacks = ATTACKS if attacks is None else attacks
    return Scenario.model_validate({
        "name": name,
        "dataset": {"name": "mnist"},
        "model": {"architecture": "mlp", "params": {"hidden": [100]}},
        "federation": federation(**overrides),
        "seeds": [seed],
        "threads": threads,
        "sweep": {"params": {"federation.aggregator": [plain(a) for a in aggregators.values()],
                             "federation.attack": [plain(a) for a in attacks.values()]}},
    })


def grid_accuracy(cells: list[dict], aggregators: Mapping[str, Any], attacks: Mapping[str, Any]) -> dict:
    """``{aggregator: {attack: final accuracy}}`` from a grid's cells (sweep order: aggregator
    outer, attack inner)."""
    names = [(a, b) for a in aggregators for b in attacks]
    out: dict[str, dict[str, float]] = {a: {} for a in aggregators}
    for (agg, atk), cell in zip(names, cells):
        out[agg][atk] = float(cell["results"]["federate"]["accuracy"])
    return out


def run(seed: int, ctx: RunContext) -> dict:
    cells = ctx.grid(r20_scenario(seed, threads=ctx.threads))
    acc = grid_accuracy(cells, AGGREGATORS, ATTACKS)
    detection = {}
    names = [(a, b) for a in AGGREGATORS for b in ATTACKS]
    for (agg, atk), cell in zip(names, cells):
        fed = cell["results"]["federate"]
        detection.setdefault(agg, {})[atk] = {"precision": fed.get("detection_precision"),
                                              "recall": fed.get("detection_recall")}
    return {"accuracy": acc, "detection": detection}


def checks(acc: dict[str, dict[str, float]]) -> dict[str, bool]:
    """The pass rule's parts on one accuracy grid (or the seed-mean grid)."""
    clean = acc["mean"]["none"]
    out = {"ipm_breaks_krum": acc["krum"]["ipm"] <= acc["krum"]["none"] - 0.10}
    for rule in ("median", "krum", "bulyan"):
        out[f"alie_hurts_{rule}"] = acc[rule]["alie"] <= acc[rule]["none"] - 0.02
    for attack in ("alie", "ipm", "sign_flip"):
        out[f"fltrust_near_clean_{attack}"] = acc["fltrust"][attack] >= clean - 0.08
    return out


def mean_grid(runs: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    return {agg: {atk: mean_std([r["accuracy"][agg][atk] for r in runs]) for atk in runs[0]["accuracy"][agg]}
            for agg in runs[0]["accuracy"]}


def summarize(runs: list[dict]) -> dict:
    grid = mean_grid(runs)
    means = {agg: {atk: v["mean"] for atk, v in row.items()} for agg, row in grid.items()}
    parts = checks(means)
    per_seed = [checks(r["accuracy"]) for r in runs]
    failed = [k for k, ok in parts.items() if not ok]
    seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
    return {"measured": {"accuracy": grid, "checks": parts, "checks_per_seed": per_seed,
                         "clean_accuracy": grid["mean"]["none"]},
            "passed": not failed,
            "verdict": (f"clean {means['mean']['none']:.2%}; Krum none/IPM {means['krum']['none']:.2%}/"
                        f"{means['krum']['ipm']:.2%}; ALIE on median/Krum/Bulyan "
                        f"{means['median']['alie']:.2%}/{means['krum']['alie']:.2%}/{means['bulyan']['alie']:.2%}; "
                        f"FLTrust worst {min(means['fltrust'][a] for a in ('alie', 'ipm', 'sign_flip')):.2%}"
                        + (f"; missed: {', '.join(failed)}" if failed else "") + f" ({seeds})")}
