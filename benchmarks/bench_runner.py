"""The run layer's backends on one grid: serial (in-process), a local process pool, and Ray.

Runs examples/grid-digits.yaml (3 attacks x 3 data detectors x 3 poison rates x 2 seeds = 54
cells on digits) on each backend with a fresh cache, checks that the three records are
identical (same fingerprint), and reports wall time, the pool's speed-up, and Ray's start-up and
per-cell overhead (Ray's time beyond the pool's, divided by the cells, with start-up measured
apart by an empty ray.init / ray.shutdown).

    .venv/bin/python benchmarks/bench_runner.py [--workers 2] [--scenario examples/grid-digits.yaml]

Writes benchmarks/results/runner_backends.json.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import ROOT, environment, write_json


def _time_backend(scenario, backend: str, workers: int) -> tuple[float, dict]:
    from poisonlab.runs import Runner

    cache = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    try:
        t0 = time.perf_counter()
        record = Runner(backend=backend, workers=workers, cache_dir=cache).run(scenario)
        return time.perf_counter() - t0, record
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _ray_startup(workers: int) -> float:
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.shutdown()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenario", type=Path, default=ROOT / "examples" / "grid-digits.yaml")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()

    from poisonlab.runs import expand, load_scenario

    scenario = load_scenario(args.scenario)
    n_cells = len(expand(scenario))
    rows = {}
    for backend in ("local", "pool", "ray"):
        if backend == "ray" and args.skip_ray:
            continue
        seconds, record = _time_backend(scenario, backend, args.workers)
        rows[backend] = {"seconds": seconds, "fingerprint": record["fingerprint"],
                         "seconds_per_cell": seconds / n_cells}
        print(f"{backend:<6} {seconds:8.1f} s  ({seconds / n_cells:.2f} s per cell)  "
              f"fingerprint {record['fingerprint'][:16]}", flush=True)
    out = {"scenario": str(args.scenario.relative_to(ROOT)), "n_cells": n_cells,
           "workers": args.workers, "backends": rows,
           "identical_records": len({r["fingerprint"] for r in rows.values()}) == 1,
           "pool_over_serial": rows["pool"]["seconds"] / rows["local"]["seconds"]}
    if "ray" in rows:
        startup = _ray_startup(args.workers)
        out["ray_startup_seconds"] = startup
        out["ray_overhead_per_cell_seconds"] = (rows["ray"]["seconds"] - startup - rows["pool"]["seconds"]) / n_cells
        out["ray_over_serial"] = rows["ray"]["seconds"] / rows["local"]["seconds"]
    print(f"pool / serial = {out['pool_over_serial']:.2f}; identical records: {out['identical_records']}")
    if "ray" in rows:
        print(f"ray start-up {out['ray_startup_seconds']:.1f} s; overhead per cell beyond the pool "
              f"{out['ray_overhead_per_cell_seconds']:+.2f} s")
    out["command"] = "benchmarks/bench_runner.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "skip_ray")
    out["environment"] = environment()
    print(f"wrote {write_json('runner_backends.json', out)}")


if __name__ == "__main__":
    main()
