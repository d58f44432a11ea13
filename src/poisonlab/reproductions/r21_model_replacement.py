"""R21: model replacement in federated learning (Bagdasaryan et al., AISTATS 2020).

Threat model: one of 100 MNIST clients is the attacker. It trains on backdoored data (BadNets:
half of its digits get R1's 3x3 white square and the label 7) and, in the one round it is
selected, boosts its update by ``gamma = n / eta`` (10 clients per round, server learning rate
1) so that FedAvg's average lands on its model: the shared model is *replaced*. Defense: norm
clipping with weak Gaussian noise (Sun et al. 2019), the bound set at the honest updates' scale.

Run in three phases on :func:`~poisonlab.federated.run_federation` (its model factory may be a
module whose weights start the federation): honest rounds until the model has converged, the
attack round (9 honest clients drawn from the 99 plus the attacker), and honest rounds after it
to see the backdoor fade.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from .common import RunContext, mean_std

ID = "R21"
TITLE = "Model replacement: one boosted backdoor update"
SETTING = ("MNIST's first 50,000 training digits dealt IID to 100 clients (500 each), MLP 784-100-10; FedAvg "
           "(1 local epoch, batch 32, lr 0.1) with 10 clients per round for 30 honest rounds; then one round "
           "of 9 honest clients + the attacker (BadNets on half its digits, 3x3 white square -> 7, update "
           "boosted by n / eta = 10); then 10 honest rounds. Backdoor accuracy: triggered non-7 test digits "
           "classified 7. Defense: norm clipping at the median honest update norm of the attack round, "
           "weak Gaussian noise (std 1e-3 per coordinate)")
PAPER = "Bagdasaryan et al. 2020: the backdoor reaches ~100% right after the attacker's round"
TARGET = ("backdoor accuracy >= 90% after that round under FedAvg; norm clipping + noise reduces it (mean over "
          "seeds below FedAvg's)")
#: Expected CPU minutes per seed on one thread.
MINUTES = 2.0
DATA = ("mnist",)

N_CLIENTS, PER_ROUND, WARMUP, AFTER = 100, 10, 30, 10
BADNETS = MappingProxyType({"target": 7, "poison_rate": 0.5, "patch_size": 3, "location": "bottom-right",
                            "pattern": "square", "value": 1.0})


def _mlp(spec):
    from ..models.architectures import build_model

    return build_model("mlp", spec, hidden=(100,))


def run(seed: int, ctx: RunContext) -> dict:
    from ..attacks.data.badnets import BadNets
    from ..attacks.federated import ModelReplacement
    from ..defenses.federated import FedAvg, NormClipping
    from ..federated import FederationConfig, partition_clients, poison_clients, run_federation

    train, _val, test = ctx.mnist()
    X, y = np.asarray(train.X), np.asarray(train.y)
    Xt, yt = np.asarray(test.X), np.asarray(test.y)
    parts = partition_clients(y, N_CLIENTS, "iid", random_state=seed)
    clients = [(X[p], y[p]) for p in parts]
    attacker = N_CLIENTS - 1
    atk = BadNets(**BADNETS, random_state=seed)
    clients = poison_clients(clients, [attacker], atk)
    keep = yt != BADNETS["target"]
    backdoor_test = (atk.apply_trigger(Xt[keep]), np.full(int(keep.sum()), BADNETS["target"]))
    cfg = dict(mode="fedavg", local_epochs=1, batch_size=32, lr=0.1)
    test_set = (Xt, yt)

    # 1. honest rounds (the attacker is not drawn: clients 0..98)
    warm = run_federation(_mlp, clients[:attacker], test_set, aggregator=FedAvg(),
                          config=FederationConfig(rounds=WARMUP, clients_per_round=PER_ROUND, eval_every=WARMUP, **cfg),
                          backdoor_test=backdoor_test, random_state=seed)
    rng = np.random.default_rng([seed, 21])
    honest = sorted(rng.choice(attacker, size=PER_ROUND - 1, replace=False).tolist())
    round_clients = [clients[k] for k in honest] + [clients[attacker]]
    one = FederationConfig(rounds=1, eval_every=1, **cfg)
    out = {"clean_accuracy_before": warm.accuracy, "backdoor_before": warm.backdoor_accuracy}
    # the norm bound: the median of the honest clients' update norms at the attack round
    honest_norms = _client_norms(warm.model(), round_clients[:-1], one, seed)
    bound = float(np.median(honest_norms))
    out["norm_bound"] = bound
    for name, agg in (("fedavg", FedAvg()),
                      ("norm_clipping", NormClipping(max_norm=bound, noise_std=1e-3, random_state=seed))):
        hit = run_federation(warm.model(), round_clients, test_set, aggregator=agg, config=one,
                             malicious=[PER_ROUND - 1], update_attack=ModelReplacement(),
                             backdoor_test=backdoor_test, random_state=seed)
        after = run_federation(hit.model(), clients[:attacker], test_set, aggregator=agg.clone(),
                               config=FederationConfig(rounds=AFTER, clients_per_round=PER_ROUND, eval_every=1,
                                                       **cfg),
                               backdoor_test=backdoor_test, random_state=seed + 1)
        out[name] = {"backdoor_after_attack": hit.backdoor_accuracy, "accuracy_after_attack": hit.accuracy,
                     "backdoor_curve_after": [r.backdoor_accuracy for r in after.history],
                     "accuracy_end": after.accuracy}
    return out


def _client_norms(model, clients, config, seed) -> np.ndarray:
    """Each client's honest update norm from ``model``: a one-client FedAvg round's aggregate is
    that client's update (evaluated on one sample only: the accuracy is not needed)."""
    from ..defenses.federated import FedAvg
    from ..federated import run_federation

    return np.array([run_federation(model, [c], (c[0][:1], c[1][:1]), aggregator=FedAvg(), config=config,
                                    random_state=seed).history[-1].update_norm for c in clients])


def summarize(runs: list[dict]) -> dict:
    fa = mean_std([r["fedavg"]["backdoor_after_attack"] for r in runs])
    nc = mean_std([r["norm_clipping"]["backdoor_after_attack"] for r in runs])
    acc = mean_std([r["fedavg"]["accuracy_after_attack"] for r in runs])
    passed = fa["mean"] >= 0.90 and nc["mean"] < fa["mean"]
    seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
    return {"measured": {"backdoor_after_attack": {"fedavg": fa, "norm_clipping": nc},
                         "accuracy_after_attack_fedavg": acc,
                         "backdoor_before": mean_std([r["backdoor_before"] for r in runs]),
                         "clean_accuracy_before": mean_std([r["clean_accuracy_before"] for r in runs])},
            "passed": passed,
            "verdict": (f"backdoor accuracy right after the attacker's round: FedAvg {fa['mean']:.1%} (target >= 90%), "
                        f"norm clipping + noise {nc['mean']:.1%} (before the round {runs[0]['backdoor_before']:.1%}); "
                        f"clean accuracy after it {acc['mean']:.1%} ({seeds})")}
