"""The federated simulator beside Flower's simulation (``flwr.simulation.run_simulation`` on Ray),
on the same task with the same procedure: seconds per round, start-up, and the models reached.

Setting (R20's): MNIST, the 60,000 training digits split IID over 20 clients
(``partition_clients(..., "iid", random_state=0)``), MLP 784-100-10, every client in every round,
FedSGD: each client takes ONE gradient of its mean cross-entropy on 32 of its digits, lr 0.1, and
the server averages the clients' results with equal weights (server lr 1). Same initial model on
both sides (ours, seed 0), and the same 32 digits per client per round: the Flower client draws
them with ``poisonlab.federated.local.client_orders`` under the seed ``run_federation`` derives,
so both sides compute the same gradients and the final models agree to float32 round-off (ours
averages ``-lr * g`` in float64 and adds it to the float32 model; Flower's FedAvg averages the
clients' float32 models ``w - lr * g``).

Ours: ``run_federation`` with ``FederationConfig(mode="fedsgd", batch_size=32, lr=0.1)``, one
torch thread, accuracy measured after the last round only. Flower 1.42: a ``ClientApp`` whose
train function loads the global ``ArrayRecord`` into a torch MLP, takes the gradient and returns
the new parameters with ``num-examples = 32``; the built-in ``FedAvg`` strategy
(``fraction_evaluate=0``: no client evaluation); ``run_simulation`` with 20 SuperNodes on Ray
with 2 CPUs, one per client (``backend_config={"client_resources": {"num_cpus": 1, "num_gpus":
0.0}, "init_args": {"num_cpus": 2, "include_dashboard": False}}``): two worker processes train
while the server thread waits, so Flower uses up to 2 cores against our 1 thread. The Flower
clients read the digits from a memory-mapped copy (benchmarks/.cache), not from the pickled app.

Timings: ours, the median of 3 runs (R rounds each) and one run of 300 rounds; Flower, one run:
start-up = from calling ``run_simulation`` to the first client function being entered (Ray
start, actors; each worker's first call then imports torch and poisonlab, in round 1); steady
round = the median time between the ends of two consecutive rounds (ours: the median of rounds
2..R); teardown = from the last aggregation to ``run_simulation`` returning. Wall seconds on a shared 2-core machine: the load average is
recorded beside them.

    .venv/bin/python benchmarks/bench_federated_vs_flower.py [--rounds 20] [--long-rounds 300]
"""

from __future__ import annotations

import os

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # read when flwr is first imported
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a Ray FutureWarning

import argparse  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from common import CACHE, data_dir, environment, write_json  # noqa: E402

N_CLIENTS, HIDDEN, BATCH, LR, SEED = 20, 100, 32, 0.1, 0
BACKEND_CONFIG = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                  "init_args": {"num_cpus": 2, "include_dashboard": False}}


def fedsgd_client(msg, context):
    """Flower ClientApp train function: one FedSGD step of client ``partition-id`` from the global
    model: the same 32 digits as ``run_federation`` draws (``client_orders`` with the round's key),
    returns ``w - lr * g`` and its start / end times."""
    import time

    t_start = time.time()
    import numpy as np
    import torch
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

    from poisonlab.federated.local import client_orders
    from poisonlab.models import MLP

    torch.set_num_threads(1)
    t_ready = time.time()  # after the imports (a worker's first call imports torch and poisonlab)
    cfg = msg.content["config"]
    k = int(context.node_config["partition-id"])
    rnd = int(cfg["server-round"])
    B, lr = int(cfg["batch-size"]), float(cfg["lr"])
    X = np.load(cfg["data-prefix"] + "_X.npy", mmap_mode="r")
    y = np.load(cfg["data-prefix"] + "_y.npy", mmap_mode="r")
    off = np.load(cfg["data-prefix"] + "_offsets.npy")
    n_k = int(off[k + 1] - off[k])
    pos = client_orders(np.array([n_k]), np.array([k]), int(cfg["order-seed"]), rnd - 1, n_k, first=B)[0]
    rows = off[k] + pos[:min(B, n_k)]
    xb = torch.from_numpy(np.ascontiguousarray(X[rows]))
    yb = torch.from_numpy(np.ascontiguousarray(y[rows])).to(torch.int64)
    model = MLP(int(cfg["d-in"]), 10, hidden=(int(cfg["hidden"]),))
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    params = list(model.parameters())
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(lr * g)
    metrics = MetricRecord({"num-examples": len(rows), "t-start": t_start, "t-ready": t_ready,
                            "t-end": time.time()})
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}), reply_to=msg)


def run_flower(rounds: int, initial_state: dict, train_config: dict) -> dict:
    """One ``run_simulation`` of ``rounds`` FedSGD rounds; the final state dict and the timeline."""
    from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    timeline: dict = {"round_start": {}, "round_end": {}, "clients": {}}

    def collect(contents, weighted_by_key):
        rnd = len(timeline["clients"]) + 1
        timeline["clients"][rnd] = [(float(c["metrics"]["t-start"]), float(c["metrics"]["t-ready"]),
                                     float(c["metrics"]["t-end"])) for c in contents]
        return MetricRecord({"clients": len(contents)})

    class TimedFedAvg(FedAvg):
        def configure_train(self, server_round, arrays, config, grid):
            timeline["round_start"][server_round] = time.time()
            return super().configure_train(server_round, arrays, config, grid)

        def aggregate_train(self, server_round, replies):
            out = super().aggregate_train(server_round, replies)
            timeline["round_end"][server_round] = time.time()
            return out

    client_app = ClientApp()
    client_app.train()(fedsgd_client)
    server_app = ServerApp()
    result: dict = {}

    @server_app.main()
    def main(grid, context):
        timeline["server_main"] = time.time()
        strategy = TimedFedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=N_CLIENTS,
                               min_available_nodes=N_CLIENTS, train_metrics_aggr_fn=collect)
        res = strategy.start(grid=grid, initial_arrays=ArrayRecord(initial_state), num_rounds=rounds,
                             timeout=600, train_config=ConfigRecord(train_config))
        result["state"] = res.arrays.to_torch_state_dict()

    timeline["call"] = time.time()
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=N_CLIENTS,
                   backend_config=BACKEND_CONFIG)
    timeline["return"] = time.time()
    if "state" not in result:
        raise SystemExit("Flower's ServerApp did not finish")
    return {"state": result["state"], "timeline": timeline}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--long-rounds", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    R = args.rounds
    import torch

    import flwr
    from threadpoolctl import threadpool_limits

    from poisonlab._validation import check_random_state, derive_seed
    from poisonlab.data import load_dataset
    from poisonlab.defenses.federated import FedAvg
    from poisonlab.federated import FederationConfig, partition_clients, run_federation
    from poisonlab.federated.local import FlatModel
    from poisonlab.models import MLP

    logging.getLogger("flwr").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    t = time.perf_counter()
    splits = load_dataset("mnist", root=data_dir())
    parts = partition_clients(splits.train.y, N_CLIENTS, "iid", random_state=SEED)
    clients = [(splits.train.X[p], splits.train.y[p]) for p in parts]
    test = (splits.test.X, splits.test.y)
    load_s = time.perf_counter() - t
    d_in = int(np.prod(splits.train.X.shape[1:]))

    def factory(spec):
        return MLP(d_in, 10, hidden=(HIDDEN,))

    def ours(rounds: int):
        cfg = FederationConfig(rounds=rounds, mode="fedsgd", batch_size=BATCH, lr=LR, eval_every=rounds)
        la = os.getloadavg()[0]
        t, c = time.perf_counter(), time.process_time()
        with threadpool_limits(limits=1):  # one thread for BLAS too (numpy's OpenBLAS would take 2)
            out = run_federation(factory, clients, test, aggregator=FedAvg(), config=cfg, random_state=SEED)
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        steady = [r.seconds for r in out.history[1:]] or [out.history[0].seconds]
        return out, {"seconds": secs, "cpu_seconds": cpu, "seconds_per_round": secs / rounds,
                     "steady_seconds_per_round": float(np.median(steady)),
                     "mean_seconds_per_round_after_first": float(np.mean(steady)), "accuracy": out.accuracy,
                     "load_average_before": la}

    runs = []
    for i in range(args.repeats):
        out, info = ours(R)
        runs.append(info)
        print(f"ours {R} rounds: {info['seconds']:.2f} s (cpu {info['cpu_seconds']:.2f}), accuracy "
              f"{info['accuracy']:.4f}", file=sys.stderr, flush=True)
    ours_R = out
    med = {k: statistics.median(r[k] for r in runs) for k in ("seconds", "cpu_seconds", "seconds_per_round",
                                                                "steady_seconds_per_round")}
    long_out, long_info = ours(args.long_rounds)
    print(f"ours {args.long_rounds} rounds: {long_info['seconds']:.1f} s, accuracy {long_info['accuracy']:.4f}",
          file=sys.stderr, flush=True)

    # Flower: same initial model, same batches (run_federation's seeds: init, then batch order)
    rng = check_random_state(SEED)
    derive_seed(rng)
    order_seed = derive_seed(rng)
    fm = FlatModel(factory(None))
    initial_state = fm.module(ours_R.initial_params).state_dict()
    CACHE.mkdir(parents=True, exist_ok=True)
    prefix = str(CACHE / f"fedsgd_mnist_iid{N_CLIENTS}_s{SEED}")
    order = np.concatenate(parts)
    np.save(prefix + "_X.npy", np.ascontiguousarray(splits.train.X[order].reshape(len(order), -1), dtype=np.float32))
    np.save(prefix + "_y.npy", splits.train.y[order].astype(np.int64))
    np.save(prefix + "_offsets.npy", np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64))
    train_config = {"order-seed": order_seed, "batch-size": BATCH, "lr": LR, "data-prefix": prefix,
                    "d-in": d_in, "hidden": HIDDEN}
    la_flower = os.getloadavg()[0]
    fl = run_flower(R, initial_state, train_config)
    tl = fl["timeline"]
    first_client = min(c[0] for c in tl["clients"][1])
    compute = [c[2] - c[1] for r in range(2, R + 1) for c in tl["clients"][r]]
    imports = [c[1] - c[0] for c in tl["clients"][1]]
    ends = [tl["round_end"][r] for r in range(1, R + 1)]
    flower = {
        "seconds_total": tl["return"] - tl["call"],
        "startup_seconds": first_client - tl["call"],
        "server_main_after_seconds": tl["server_main"] - tl["call"],
        "round1_seconds": ends[0] - first_client,
        "steady_seconds_per_round": float(np.median(np.diff(ends))),
        "mean_seconds_per_round_after_first": (ends[-1] - ends[0]) / (R - 1),
        "rounds_seconds": ends[-1] - first_client,
        "teardown_seconds": tl["return"] - ends[-1],
        "client_compute_seconds_median": float(np.median(compute)),
        "client_compute_seconds_mean": float(np.mean(compute)),
        "client_first_call_import_seconds_max": float(max(imports)),
        "round_seconds": [float(x) for x in np.diff([first_client] + ends)],
        "load_average_before": la_flower,
    }
    flower["seconds_per_round_incl_startup"] = flower["seconds_total"] / R
    module = factory(None)
    module.load_state_dict(fl["state"])
    fl_flat = fm.flatten(module)
    Xte, yte = torch.as_tensor(test[0]), torch.as_tensor(test[1], dtype=torch.int64)
    fl_acc = float((fm.predict(fl_flat, Xte) == yte).double().mean())
    diff = float(np.max(np.abs(fl_flat.numpy() - ours_R.params)))
    print(f"flower {R} rounds: {flower['seconds_total']:.1f} s (start-up {flower['startup_seconds']:.1f} s, "
          f"{flower['steady_seconds_per_round']:.3f} s/round), accuracy {fl_acc:.4f}", file=sys.stderr, flush=True)

    ratio_steady = flower["steady_seconds_per_round"] / med["steady_seconds_per_round"]
    ratio_total = flower["seconds_total"] / med["seconds"]
    res = {
        "setting": __doc__.split("\n\n")[1], "procedure": "fedsgd (one batch of 32 per client per round, lr 0.1, "
        "equal-weight mean, server lr 1)", "rounds": R, "n_clients": N_CLIENTS, "model": f"MLP {d_in}-{HIDDEN}-10",
        "load_seconds": load_s, "backend_config": BACKEND_CONFIG,
        "ours": {"median": med, "runs": runs, "accuracy": ours_R.accuracy, "threads": 1},
        "ours_long": {"rounds": args.long_rounds, **long_info},
        "flower": {**flower, "accuracy": fl_acc, "flwr": flwr.__version__},
        "same_model": {"max_abs_param_diff": diff, "max_abs_param": float(np.max(np.abs(ours_R.params))),
                       "accuracy_ours": ours_R.accuracy, "accuracy_flower": fl_acc},
        "ratio_steady_round_flower_over_ours": ratio_steady,
        "ratio_total_flower_over_ours": ratio_total,
        "flower_rounds_excl_startup_over_ours": flower["rounds_seconds"] / med["seconds"],
        "goal_10x_steady_met": ratio_steady >= 10,
        "flower_extrapolated_long_seconds": flower["startup_seconds"] + flower["round1_seconds"]
        + (args.long_rounds - 1) * flower["mean_seconds_per_round_after_first"] + flower["teardown_seconds"],
    }
    res["environment"] = environment()
    res["command"] = " ".join(["benchmarks/bench_federated_vs_flower.py", *sys.argv[1:]])
    path = write_json("federated_vs_flower.json", res)

    print(f"\nFedSGD, MNIST IID over {N_CLIENTS} clients, MLP {d_in}-{HIDDEN}-10, {R} rounds\n")
    print("| | total s | start-up s | s / round (steady) | final accuracy |\n|---|---|---|---|---|")
    print(f"| ours (median of {args.repeats}, 1 thread) | {med['seconds']:.2f} | - | "
          f"{med['steady_seconds_per_round']:.4f} | {ours_R.accuracy:.4f} |")
    print(f"| Flower run_simulation (Ray, 2 CPUs) | {flower['seconds_total']:.1f} | {flower['startup_seconds']:.1f} | "
          f"{flower['steady_seconds_per_round']:.4f} | {fl_acc:.4f} |")
    print(f"| ours, {args.long_rounds} rounds | {long_info['seconds']:.1f} | - | "
          f"{long_info['steady_seconds_per_round']:.4f} | {long_info['accuracy']:.4f} |")
    print(f"\nratio Flower / ours: steady round {ratio_steady:.1f}x, end to end {ratio_total:.1f}x; "
          f"max |param diff| after {R} rounds {diff:.3g}")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
