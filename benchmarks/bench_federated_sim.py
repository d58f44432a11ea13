"""The federated simulator on R20's setting: wall time of 300 rounds with 20 clients.

Setting: MNIST (60,000 training digits split IID over 20 clients; the 10,000 test digits),
MLP 784-100-10, 300 rounds, every client in every round, FedAvg aggregation, client SGD lr 0.1
without momentum, server lr 1, accuracy measured every 10 rounds and after the last. Two local
procedures:
* "fedsgd" -- one gradient per client per round on 32 of its samples, update = -lr * g (the
  distributed SGD of the Byzantine-robustness papers, R20);
* "fedavg" -- one local epoch of minibatch SGD, batch 64 (47 steps per client per round), update
  = local - global parameters: 300 passes over the 60,000 digits in all.
Each with torch threads 1 and 2. The seconds are those of ``run_federation`` (data loading and
partitioning not included), beside the process's CPU seconds and the machine's load average:
the benchmark machine is shared, and wall time under load is not the simulator's speed
(``bmm_gflops_before``: the rate of one bmm of the simulator's shape just before each run). The
achieved GEMM rate is the model's training flops per wall second (forward and weight gradient
of both layers, input gradient of the second; the first layer's input gradient is never
computed).

    .venv/bin/python benchmarks/bench_federated_sim.py [--rounds 300] [--threads 1 2] [--modes fedsgd fedavg]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from common import RESULTS, data_dir, environment, write_json

N_CLIENTS, HIDDEN = 20, 100
SETTINGS = {"fedsgd": {"batch_size": 32}, "fedavg": {"batch_size": 64, "local_epochs": 1}}


def model_flops_per_sample(d_in: int = 784, hidden: int = HIDDEN, classes: int = 10) -> int:
    """Flops of one training sample: forward (2 m n) + weight gradient (2 m n) of both layers, plus
    the hidden layer's input gradient (2 m n of the second layer)."""
    return 4 * d_in * hidden + 6 * hidden * classes


def gemm_gflops(repeats: int = 20) -> float:
    """The machine's rate right now on the simulator's largest product (20 clients x 64 samples
    x 784 -> 100, one bmm) at the current torch thread count: how much of the CPU the run gets."""
    import torch

    x, w = torch.rand(N_CLIENTS, 64, 784), torch.rand(N_CLIENTS, HIDDEN, 784)
    torch.bmm(x, w.transpose(1, 2))
    t = time.perf_counter()
    for _ in range(repeats):
        torch.bmm(x, w.transpose(1, 2))
    return 2 * N_CLIENTS * 64 * 784 * HIDDEN * repeats / (time.perf_counter() - t) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--modes", nargs="+", default=["fedsgd", "fedavg"], choices=sorted(SETTINGS))
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--merge", action="store_true",
                    help="keep the runs of results/federated_sim.json of other (mode, threads) pairs")
    args = ap.parse_args()
    import torch

    from poisonlab.data import load_mnist
    from poisonlab.defenses.federated import FedAvg
    from poisonlab.federated import FederationConfig, partition_clients, run_federation
    from poisonlab.models import MLP

    t = time.perf_counter()
    splits = load_mnist(data_dir())
    parts = partition_clients(splits.train.y, N_CLIENTS, "iid", random_state=0)
    clients = [(splits.train.X[p], splits.train.y[p]) for p in parts]
    test = (splits.test.X, splits.test.y)
    load_s = time.perf_counter() - t
    previous = []
    if args.merge and (RESULTS / "federated_sim.json").is_file():
        old = json.loads((RESULTS / "federated_sim.json").read_text())
        previous = [{"rounds": old.get("rounds"), **r,
                     "environment_of_run": r.get("environment_of_run", old.get("environment"))}
                    for r in old.get("runs", [])]
    res: dict = {"setting": __doc__.split("\n\n")[1], "rounds": args.rounds, "n_clients": N_CLIENTS,
                 "model": f"MLP 784-{HIDDEN}-10", "eval_every": args.eval_every, "load_seconds": load_s,
                 "runs": previous}
    for mode in args.modes:
        for threads in args.threads:
            torch.set_num_threads(threads)
            cfg = FederationConfig(rounds=args.rounds, mode=mode, lr=0.1, eval_every=args.eval_every,
                                   **SETTINGS[mode])
            load_before = os.getloadavg()
            calib = gemm_gflops()
            t, c = time.perf_counter(), time.process_time()
            out = run_federation(lambda spec: MLP(784, 10, hidden=(HIDDEN,)), clients, test,
                                 aggregator=FedAvg(), config=cfg, random_state=0)
            secs, cpu = time.perf_counter() - t, time.process_time() - c
            if mode == "fedsgd":
                samples = args.rounds * N_CLIENTS * cfg.batch_size
            else:
                samples = args.rounds * sum(-(-len(p) // cfg.batch_size) * cfg.batch_size for p in parts)
            gflop = samples * model_flops_per_sample() / 1e9
            run = {"mode": mode, "threads": threads, "rounds": args.rounds, "batch_size": cfg.batch_size,
                   "seconds": secs, "seconds_for_300_rounds": secs * 300 / args.rounds,
                   "cpu_seconds": cpu, "seconds_per_round": secs / args.rounds,
                   "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0],
                   "bmm_gflops_before": calib,
                   "final_accuracy": out.accuracy,
                   "accuracy_curve": out.summary()["accuracy_curve"], "training_gflop": gflop,
                   "achieved_gflops": gflop / secs, "within_2_minutes": secs * 300 / args.rounds <= 120}
            res["runs"] = [r for r in res["runs"] if (r["mode"], r["threads"]) != (mode, threads)] + [run]
            print(f"{mode} threads={threads}: {secs:.1f} s ({secs / args.rounds * 1e3:.0f} ms/round, cpu "
                  f"{cpu:.1f} s, load {load_before[0]:.1f}), accuracy {out.accuracy:.4f}", file=sys.stderr, flush=True)
            write_json("federated_sim.json", {**res, "environment": environment(), "partial": True})
    res["environment"] = environment()
    res["command"] = " ".join(["benchmarks/bench_federated_sim.py", *sys.argv[1:]])
    path = write_json("federated_sim.json", res)
    print("| mode | threads | rounds | wall s | cpu s | ms / round | load avg | final accuracy | GFLOP/s |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for r in sorted(res["runs"], key=lambda r: (r["mode"] != "fedsgd", r["threads"])):
        print(f"| {r['mode']} | {r['threads']} | {r.get('rounds', args.rounds)} | {r['seconds']:.1f} | "
              f"{r['cpu_seconds']:.1f} | "
              f"{r['seconds_per_round'] * 1e3:.0f} | {r['load_average_before']:.1f} | "
              f"{r['final_accuracy']:.4f} | {r['achieved_gflops']:.1f} |")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
