"""The provenance ledger at scale: snapshot 1,000,000 samples into SQLite and PostgreSQL, diff two
such snapshots, verify the ledger.

Data: a generated ``.npy`` of 1,000,000 x 16 float32 features with integer labels (10 classes),
and a second version with 1% of the samples relabelled, 1% removed and 1% added. Each
operation runs in its own subprocess (one thread), which reports its wall time and its peak
resident memory (``VmHWM`` of ``/proc/self/status``; ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
is reported beside it but on Linux it keeps the parent's peak across fork and exec, so it reads
the data generator's memory, not the ingest's), so one measurement's memory never includes
another's. PostgreSQL is a throwaway local server started from Debian's binaries
(as the ``postgres`` user when run as root), default durability settings.

Goal: snapshot <= 60 s and <= 500 MB peak memory on each backend.

    .venv/bin/python benchmarks/bench_ledger.py [--n 1000000] [--skip-postgres]

Writes benchmarks/results/bench_ledger.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import environment, write_json

HERE = Path(__file__).resolve().parent
GOAL_SECONDS, GOAL_MB = 60.0, 500.0

_CHILD = r"""
import json, resource, sys, time
op, url = sys.argv[1], sys.argv[2]
from poisonlab.provenance.ledger import Ledger
t0 = time.perf_counter()
with Ledger.open(url) as ledger:
    if op == "ingest":
        from poisonlab.provenance.snapshot import ingest_snapshot
        row = ingest_snapshot(ledger, sys.argv[3], labels=sys.argv[4], source="bench", contributor="bench",
                              name=sys.argv[5])
        info = {"n_samples": row["n_samples"], "merkle_root": row["merkle_root"]}
    elif op == "diff":
        from poisonlab.provenance.diff import diff_snapshots
        d = diff_snapshots(ledger, sys.argv[3], sys.argv[4])
        info = {"n_added": d.n_added, "n_removed": d.n_removed, "n_relabelled": d.n_relabelled,
                "n_unchanged": d.n_unchanged, "tvd": d.label_shift["tvd"],
                "near_changed_label": d.near_duplicates["n_changed_label"]}
    else:
        r = ledger.verify()
        info = {"ok": r.ok, "n_samples": r.n_samples}
seconds = time.perf_counter() - t0
# VmHWM: this process's own peak (ru_maxrss keeps the parent's peak across fork + exec on Linux)
hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": hwm,
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **info}))
"""


def _child(*args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - t0  # including interpreter start and imports
    return res


def make_data(folder: Path, n: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 16)).astype(np.float32)
    y = rng.integers(0, 10, n)
    np.save(folder / "a_X.npy", X)
    np.save(folder / "a_y.npy", y)
    k = n // 100
    y2 = y.copy()
    relabel = rng.choice(n, size=k, replace=False)
    y2[relabel] = (y2[relabel] + 1 + rng.integers(0, 9, k)) % 10
    keep = np.ones(n, bool)
    keep[rng.choice(np.setdiff1d(np.arange(n), relabel), size=k, replace=False)] = False
    X2 = np.concatenate([X[keep], rng.normal(size=(k, 16)).astype(np.float32) + 5])
    y2 = np.concatenate([y2[keep], rng.integers(0, 10, k)])
    np.save(folder / "b_X.npy", X2)
    np.save(folder / "b_y.npy", y2)
    return {"n_a": n, "n_b": len(y2), "relabelled": k, "removed": k, "added": k, "features": 16,
            "dtype": "float32", "classes": 10}


def start_postgres(folder: Path):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        return None, None
    bindir = Path(found[-1]).parent
    prefix, user = [], pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        prefix, user = ["runuser", "-u", "postgres", "--"], "postgres"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)

    def stop():
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)

    return f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres", stop


def bench_backend(url: str, folder: Path) -> dict:
    a = _child("ingest", url, str(folder / "a_X.npy"), str(folder / "a_y.npy"), "a")
    b = _child("ingest", url, str(folder / "b_X.npy"), str(folder / "b_y.npy"), "b")
    d = _child("diff", url, "a", "b")
    v = _child("verify", url)
    return {"snapshot_a": a, "snapshot_b": b, "diff": d, "verify": v,
            "meets_goal": a["seconds"] <= GOAL_SECONDS and a["peak_rss_mb"] <= GOAL_MB
            and b["seconds"] <= GOAL_SECONDS and b["peak_rss_mb"] <= GOAL_MB}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    results = {}
    try:
        data = json.loads(subprocess.run(
            [sys.executable, "-c", f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import bench_ledger as b; "
             f"from pathlib import Path; print(json.dumps(b.make_data(Path({str(work)!r}), {args.n})))"],
            check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        db = work / "ledger.db"
        results["sqlite"] = bench_backend(str(db), work)
        results["sqlite"]["file_mb"] = sum(p.stat().st_size for p in work.glob("ledger.db*")) / 2**20
        print("sqlite", json.dumps(results["sqlite"], indent=1), flush=True)
        if not args.skip_postgres:
            pg = Path(tempfile.mkdtemp(prefix="bench-ledger-pg-"))  # owned by postgres when root
            url, stop = start_postgres(pg)
            if url is None:
                results["postgresql"] = {"skipped": "PostgreSQL binaries not found"}
            else:
                try:
                    results["postgresql"] = bench_backend(url, work)
                finally:
                    stop()
                    shutil.rmtree(pg, ignore_errors=True)
                print("postgresql", json.dumps(results["postgresql"], indent=1), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"benchmark": "ledger", "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
           "environment": environment(), "goal": {"seconds": GOAL_SECONDS, "peak_rss_mb": GOAL_MB},
           "data": data, "results": results}
    print(write_json("bench_ledger.json", out))


if __name__ == "__main__":
    main()
