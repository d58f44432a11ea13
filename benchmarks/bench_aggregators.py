"""Robust aggregation rules beside Flower's and ByzFL's: the same updates, the same output?, and
the time of one call.

Setting: n = 100 clients x d = 1,000,000 parameters in float64 (800 MB per copy of the updates),
seeded (numpy ``default_rng(0)``): every row is ``mu + N(0, 1)`` with ``mu ~ N(0, 0.1^2)`` per
coordinate, and 10 Byzantine rows (at random positions) are offset by +2 in every coordinate
(``f = 10`` everywhere). Each rule runs on the very same array:

* ours: ``poisonlab.defenses.federated`` classes (Krum, MultiKrum, Bulyan, CoordinateMedian,
  TrimmedMean, CenteredClipping) and ``aggregate.closest_to_median_mean``, through
  ``aggregate()`` (input checks, non-finite screening and ``weights_`` included);
* Flower 1.42: the built-in strategies of ``flwr.serverapp.strategy`` (Krum, MultiKrum, Bulyan,
  FedMedian, FedTrimmedAvg) through their ``aggregate_train(server_round, replies)``: the maths
  sits inside it (Multi-Krum's selection takes RecordDicts, not arrays), so the replies are
  built once per call as Messages holding one ArrayRecord (the update, serialised as Flower
  serialises it) and a MetricRecord ``num-examples = 1``. Flower's time therefore includes
  decoding the 100 ArrayRecords into numpy, which is measured separately (``decode``);
* ByzFL 0.0.11: ``byzfl.aggregators`` (Krum, MultiKrum, Median, TrMean, CenteredClipping,
  Meamed) called on the numpy array. ``import byzfl`` imports its benchmark module, which
  imports torchvision (not installable on these machines): the aggregators are imported without
  running the package's ``__init__`` (see ``import_byzfl``); their code is unchanged.

Equality: max |ours - theirs| over the d coordinates (and the root mean square of the
difference), at the peers' default parameters and, where a definition differs, at matched
parameters; beside it each output's RMS distance to the mean of the 90 honest rows. Time: the
median of 3 calls of each rule, wall and process CPU seconds, one thread (threadpoolctl +
torch.set_num_threads(1) + OMP/OPENBLAS/MKL_NUM_THREADS=1), the three tools' calls interleaved
repeat by repeat; the machine is shared, so the load average is recorded beside the times.

    .venv/bin/python benchmarks/bench_aggregators.py [--n 100] [--d 1000000] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # read when flwr is first imported

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402

from common import environment, write_json  # noqa: E402

N_BYZ, OFFSET, SEED = 10, 2.0, 0


def make_updates(n: int, d: int, n_byz: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` float64 updates, built in place (one 8 n d byte array) and the Byzantine rows."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n, d))
    U += rng.normal(0.0, 0.1, d)
    byz = np.sort(rng.choice(n, n_byz, replace=False))
    U[byz] += OFFSET
    return U, byz


def import_byzfl() -> tuple[types.ModuleType, str]:
    """ByzFL's aggregators module. ``byzfl/__init__`` imports ``byzfl.benchmark``, which imports
    torchvision; without torchvision, register the package without running its ``__init__`` and
    import ``byzfl.aggregators`` (numpy, scipy, torch only) from it."""
    try:
        import byzfl.aggregators.aggregators as agg  # noqa: F401
        return agg, "import byzfl"
    except Exception:  # ImportError without torchvision; a CUDA torchvision wheel fails otherwise
        for name in [m for m in sys.modules if m == "byzfl" or m.startswith("byzfl.")]:
            del sys.modules[name]
    spec = importlib.util.find_spec("byzfl")
    if spec is None:
        raise SystemExit("byzfl is not installed: .venv/bin/python -m pip install -c constraints.txt "
                         "--no-deps byzfl==0.0.11")
    pkg = types.ModuleType("byzfl")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    sys.modules["byzfl"] = pkg
    import byzfl.aggregators.aggregators as agg
    return agg, "byzfl.aggregators without byzfl/__init__ (torchvision absent)"


class FlowerReplies:
    """The n clients' updates as Flower reply Messages (one ArrayRecord ``{"w": update}`` and a
    MetricRecord ``num-examples = 1`` each). Serialised once; every ``build()`` makes fresh
    Messages over the same bytes (FedMedian and FedTrimmedAvg pop the arrays out of them)."""

    def __init__(self, U: np.ndarray) -> None:
        from flwr.app import Array
        from flwr.supercore.task_identity import TaskIdentity

        # what a Flower process sets before it creates Messages (run_simulation does the same)
        TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = 1, 1, 0
        self.blobs = []
        for row in U:
            a = Array.from_numpy_ndarray(row)
            self.blobs.append((a.dtype, a.shape, a.stype, a.data))

    def build(self) -> list:
        from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict

        out = []
        for i, (dtype, shape, stype, data) in enumerate(self.blobs):
            ins = Message(RecordDict(), dst_node_id=1000 + i, message_type="train")
            content = RecordDict({"arrays": ArrayRecord({"w": Array(dtype=dtype, shape=shape, stype=stype, data=data)}),
                                  "metrics": MetricRecord({"num-examples": 1})})
            out.append(Message(content, reply_to=ins))
        return out


def flower_call(strategy, replies_src: FlowerReplies) -> tuple[np.ndarray, float, float]:
    replies = replies_src.build()
    gc.collect()
    t, c = time.perf_counter(), time.process_time()
    arrays, _ = strategy.aggregate_train(1, replies)
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    out = arrays["w"].numpy()
    del replies, arrays
    return out, secs, cpu


def timed(fn, *args) -> tuple[np.ndarray, float, float]:
    gc.collect()
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return np.asarray(out), time.perf_counter() - t, time.process_time() - c


def row_index(U: np.ndarray, v: np.ndarray) -> int | None:
    """Which row of U the aggregate is (Krum returns one client's update), if any."""
    hits = [i for i in range(len(U)) if np.array_equal(U[i], v)]
    return hits[0] if len(hits) == 1 else None


def maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def rmsdiff(a: np.ndarray, b: np.ndarray) -> float:
    """Root mean square over the coordinates of ``a - b``."""
    return float(np.sqrt(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)))


def tie_breaking(byzfl_agg) -> dict:
    """Krum with one neighbour on three 1-D updates: every score ties. Which one each tool picks,
    in two orders of the same updates."""
    from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.serverapp.strategy import Krum as FlKrum

    from poisonlab.defenses.federated import Krum

    out = {}
    for name, vals in (("order [0, 1, 2]", [0.0, 1.0, 2.0]), ("order [2, 1, 0]", [2.0, 1.0, 0.0])):
        U = np.array(vals)[:, None]
        replies = [Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.array([v]))}),
                                       "metrics": MetricRecord({"num-examples": 1})}),
                           reply_to=Message(RecordDict(), dst_node_id=10 + i, message_type="train"))
                   for i, v in enumerate(vals)]
        fl, _ = FlKrum(num_malicious_nodes=0).aggregate_train(1, replies)
        out[name] = {"ours Krum(f=0)": float(Krum(f=0).aggregate(U)[0]),
                     "Flower Krum(num_malicious_nodes=0)": float(fl["w"].numpy()[0]),
                     "ByzFL Krum(f=1)": float(byzfl_agg.Krum(f=1)(U)[0])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--d", type=int, default=1_000_000)
    ap.add_argument("--f", type=int, default=N_BYZ)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tau", type=float, default=100.0, help="centred clipping radius (both tools)")
    ap.add_argument("--cc-iters", type=int, default=3, help="centred clipping iterations (both tools)")
    ap.add_argument("--output", default="aggregators.json", help="file name under benchmarks/results/")
    args = ap.parse_args()
    n, d, f, R = args.n, args.d, args.f, args.repeats

    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(1)
    limiter = threadpool_limits(1)  # noqa: F841  (kept for the whole run)
    import flwr

    logging.getLogger("flwr").setLevel(logging.WARNING)  # after import: flwr sets its own level
    from flwr.serverapp.strategy import Bulyan as FlBulyan
    from flwr.serverapp.strategy import FedMedian, FedTrimmedAvg
    from flwr.serverapp.strategy import Krum as FlKrum
    from flwr.serverapp.strategy import MultiKrum as FlMultiKrum
    from flwr.serverapp.strategy.multikrum import select_multikrum

    from poisonlab.defenses.federated import (Bulyan, CenteredClipping, CoordinateMedian, Krum, MultiKrum,
                                              TrimmedMean)
    from poisonlab.defenses.federated.aggregate import bulyan_selection, closest_to_median_mean

    bz, byzfl_import = import_byzfl()
    from importlib.metadata import version

    t0 = time.perf_counter()
    U, byz = make_updates(n, d, f, SEED)
    U.flags.writeable = False
    gen_s = time.perf_counter() - t0
    print(f"updates {U.shape} {U.dtype} ({U.nbytes / 2**20:.0f} MiB) in {gen_s:.1f} s; Byzantine rows "
          f"{byz.tolist()}", file=sys.stderr, flush=True)
    honest = np.setdiff1d(np.arange(n), byz)
    honest_mean = U[honest].mean(axis=0)  # what a rule should land near: quality beside equality
    t0 = time.perf_counter()
    fr = FlowerReplies(U)
    ser_s = time.perf_counter() - t0

    # Flower's decode cost alone: every reply's ArrayRecord to numpy (part of each aggregate_train)
    decode = []
    for _ in range(R):
        replies = fr.build()
        gc.collect()
        t = time.perf_counter()
        arrs = [m.content["arrays"]["w"].numpy() for m in replies]
        decode.append(time.perf_counter() - t)
        del arrs, replies
    decode_s = statistics.median(decode)
    # Flower's Bulyan decodes the selected replies with to_numpy_ndarrays(keep_input=False), which
    # runs a full gc.collect() per reply: its cost depends on the live objects of the process
    gcs = []
    for _ in range(5):
        t = time.perf_counter()
        gc.collect()
        gcs.append(time.perf_counter() - t)
    gc_s = statistics.median(gcs)

    theta, beta_b = n - 2 * f, n - 4 * f
    flower_sel_bulyan_rule = lambda contents, nm, th: [contents[i] for i in bulyan_selection(U, nm)]  # noqa: E731

    # (rule, ours factory, flower (label, factory) or None, byzfl (label, factory) or None, timed?)
    ours = {
        "krum": (f"Krum(f={f})", lambda: Krum(f=f).aggregate(U)),
        "multi_krum": (f"MultiKrum(f={f}) [m = n - f = {n - f}]", lambda: MultiKrum(f=f).aggregate(U)),
        "bulyan": (f"Bulyan(f={f}) [theta={theta}, beta={beta_b}]", lambda: Bulyan(f=f).aggregate(U)),
        "median": ("CoordinateMedian()", lambda: CoordinateMedian().aggregate(U)),
        "trimmed_mean": (f"TrimmedMean(f={f})", lambda: TrimmedMean(f=f).aggregate(U)),
        "centered_clipping": (f"CenteredClipping(tau={args.tau:g}, n_iter={args.cc_iters})",
                              lambda: CenteredClipping(tau=args.tau, n_iter=args.cc_iters).aggregate(U)),
        "mean_around_median": (f"aggregate.closest_to_median_mean(U, n - f = {n - f})",
                               lambda: closest_to_median_mean(U, n - f)),
    }
    flower = {
        "krum": [("default", f"Krum(num_malicious_nodes={f})", lambda: FlKrum(num_malicious_nodes=f), "krum", True)],
        "multi_krum": [
            ("default", f"MultiKrum(num_malicious_nodes={f}) [num_nodes_to_select=1]",
             lambda: FlMultiKrum(num_malicious_nodes=f), ("multi_krum", "krum"), False),
            ("matched", f"MultiKrum(num_malicious_nodes={f}, num_nodes_to_select={n - f})",
             lambda: FlMultiKrum(num_malicious_nodes=f, num_nodes_to_select=n - f), "multi_krum", True)],
        "bulyan": [
            ("default", f"Bulyan(num_malicious_nodes={f}) [selection: Multi-Krum top {theta}]",
             lambda: FlBulyan(num_malicious_nodes=f), "bulyan", True),
            ("matched", f"Bulyan(num_malicious_nodes={f}, selection_rule=<our iterated-Krum set>)",
             lambda: FlBulyan(num_malicious_nodes=f, selection_rule=flower_sel_bulyan_rule), "bulyan", False)],
        "median": [("default", "FedMedian()", lambda: FedMedian(), "median", True)],
        "trimmed_mean": [
            ("default", "FedTrimmedAvg() [beta=0.2: trims floor(0.2 n) = 20 per end]", lambda: FedTrimmedAvg(),
             ("trimmed_mean", "trimmed_mean_beta_0.2"), False),
            ("matched", f"FedTrimmedAvg(beta={f / n:g}) [trims {int(f / n * n)} per end]",
             lambda: FedTrimmedAvg(beta=f / n), "trimmed_mean", True)],
    }
    byzfl = {
        "krum": [("default", f"Krum(f={f}) [n - f - 1 = {n - f - 1} neighbours]", lambda: bz.Krum(f=f), "krum", True),
                 ("matched", f"Krum(f={f + 1}) [n - f - 2 = {n - f - 2} neighbours as ours with f={f}]",
                  lambda: bz.Krum(f=f + 1), "krum", False)],
        "multi_krum": [
            ("default", f"MultiKrum(f={f}) [{n - f - 1} neighbours, averages {n - f}]", lambda: bz.MultiKrum(f=f),
             "multi_krum", True),
            ("matched", f"MultiKrum(f={f + 1}) vs ours MultiKrum(f={f}, m={n - f - 1})",
             lambda: bz.MultiKrum(f=f + 1), ("multi_krum_m_n-f-1", "multi_krum"), False)],
        "median": [("default", "Median()", lambda: bz.Median(), "median", True)],
        "trimmed_mean": [("default", f"TrMean(f={f})", lambda: bz.TrMean(f=f), "trimmed_mean", True)],
        "centered_clipping": [("matched", f"CenteredClipping(tau={args.tau:g}, L={args.cc_iters}) [m = 0]",
                               lambda: bz.CenteredClipping(tau=args.tau, L=args.cc_iters), "centered_clipping", True)],
        "mean_around_median": [("default", f"Meamed(f={f})", lambda: bz.Meamed(f=f), "mean_around_median", True)],
    }
    # our extra references (computed once, not timed)
    extra_refs = {
        "trimmed_mean_beta_0.2": lambda: TrimmedMean(beta=0.2).aggregate(U),
        "multi_krum_m_n-f-1": lambda: MultiKrum(f=f, m=n - f - 1).aggregate(U),
    }

    res: dict = {"setting": __doc__.split("\n\n")[1], "n": n, "d": d, "dtype": "float64", "f": f,
                 "byzantine_rows": byz.tolist(), "offset": OFFSET, "seed": SEED, "repeats": R,
                 "generate_seconds": gen_s, "flower_serialise_seconds": ser_s,
                 "flower_decode_seconds": decode_s, "gc_collect_seconds": gc_s,
                 "gc_tracked_objects": len(gc.get_objects()), "byzfl_import": byzfl_import,
                 "versions": {"flwr": flwr.__version__, "byzfl": version("byzfl"), "numpy": np.__version__},
                 "blas": [{k: v for k, v in i.items() if k in ("internal_api", "num_threads", "version")}
                          for i in threadpool_info()],
                 "load_average_before": os.getloadavg()[0], "rules": {}}

    # One rule at a time; within a repeat ours, then each timed peer call, so that a change in the
    # machine's load hits both sides alike. Wall and process CPU seconds (one thread: CPU time is
    # the less load-sensitive of the two).
    refs: dict[str, np.ndarray] = {}
    flower_bulyan_default = None
    for rule, (label, fn) in ours.items():
        entries = [("flower", *e) for e in flower.get(rule, [])] + [("byzfl", *e) for e in byzfl.get(rule, [])]
        timed_entries = [e for e in entries if e[-1]]
        ours_t: list[tuple[float, float]] = []
        peer_t: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(entries))}
        peer_out: dict[int, np.ndarray] = {}
        for rep in range(R):
            out, s_wall, s_cpu = timed(fn)
            ours_t.append((s_wall, s_cpu))
            if rep == 0:
                refs[rule] = out
            else:
                assert np.array_equal(refs[rule], out), rule  # deterministic
            del out
            for i, (peer, kind, plabel, make, ref_key, do_time) in enumerate(entries):
                if not do_time and rep > 0:
                    continue
                if peer == "flower":
                    out, s_wall, s_cpu = flower_call(make(), fr)
                else:
                    out, s_wall, s_cpu = timed(make(), U)
                peer_t[i].append((s_wall, s_cpu))
                if rep == 0:
                    peer_out[i] = out
                del out
        ours_wall = statistics.median(t[0] for t in ours_t)
        ours_cpu = statistics.median(t[1] for t in ours_t)
        res["rules"][rule] = {"ours": {"call": label, "seconds": ours_wall, "cpu_seconds": ours_cpu,
                                       "all_seconds": [t[0] for t in ours_t],
                                       "rms_vs_honest_mean": rmsdiff(refs[rule], honest_mean)},
                              "flower": [], "byzfl": []}
        print(f"ours {label}: {ours_wall:.2f} s (cpu {ours_cpu:.2f})", file=sys.stderr, flush=True)
        if rule == "multi_krum":
            for key, extra in extra_refs.items():
                if key.startswith("multi_krum"):
                    refs[key] = np.asarray(extra())
        if rule == "trimmed_mean":
            refs["trimmed_mean_beta_0.2"] = np.asarray(extra_refs["trimmed_mean_beta_0.2"]())
        for i, (peer, kind, plabel, make, ref_key, do_time) in enumerate(entries):
            out = peer_out.pop(i)
            keys = (ref_key,) if isinstance(ref_key, str) else tuple(ref_key)
            entry = {"parameters": kind, "call": plabel, "compared_with": keys[0],
                     "max_abs_diff": maxdiff(out, refs[keys[0]]),
                     "max_abs_ours": float(np.max(np.abs(refs[keys[0]]))),
                     "max_abs_diff_vs": {k: maxdiff(out, refs[k]) for k in keys},
                     "rms_diff": rmsdiff(out, refs[keys[0]]), "rms_vs_honest_mean": rmsdiff(out, honest_mean)}
            if peer == "flower" and rule == "bulyan" and kind == "default":
                flower_bulyan_default = out
            if do_time:
                wall = statistics.median(t[0] for t in peer_t[i])
                cpu = statistics.median(t[1] for t in peer_t[i])
                entry.update({"seconds": wall, "cpu_seconds": cpu, "all_seconds": [t[0] for t in peer_t[i]],
                              "time_ratio_theirs_over_ours": wall / ours_wall,
                              "cpu_ratio_theirs_over_ours": cpu / ours_cpu})
                if peer == "flower":
                    entry["seconds_net_of_decode"] = wall - decode_s
                    entry["time_ratio_net_of_decode"] = (wall - decode_s) / ours_wall
            if rule == "krum":
                entry["chosen_row"] = row_index(U, out)
            res["rules"][rule][peer].append(entry)
            print(f"{peer} {plabel}: max|diff| {entry['max_abs_diff']:.3g}"
                  + (f", {entry['seconds']:.2f} s (cpu {entry['cpu_seconds']:.2f})" if do_time else ""),
                  file=sys.stderr, flush=True)
            del out
        gc.collect()
    krum_idx = row_index(U, refs["krum"])
    res["rules"]["krum"]["ours"]["chosen_row"] = krum_idx
    our_bulyan_set = bulyan_selection(U, f)
    del refs

    # Bulyan's selection sets: ours (iterated Krum) and Flower's (Multi-Krum's top theta, one pass)
    contents = [m.content for m in fr.build()]
    pos = {id(c): i for i, c in enumerate(contents)}
    fl_sel = sorted(pos[id(c)] for c in select_multikrum(contents, f, theta))
    del contents
    ours_sel = sorted(int(i) for i in our_bulyan_set)
    res["rules"]["bulyan"]["selection"] = {
        "theta": theta, "beta": beta_b,
        "ours_iterated_krum": ours_sel, "flower_multi_krum_top_theta": fl_sel,
        "only_ours": sorted(set(ours_sel) - set(fl_sel)), "only_flower": sorted(set(fl_sel) - set(ours_sel)),
        "byzantine_selected_ours": sorted(set(ours_sel) & set(byz.tolist())),
        "byzantine_selected_flower": sorted(set(fl_sel) & set(byz.tolist())),
        "ours_stage2_on_flower_set_max_abs_diff": maxdiff(
            closest_to_median_mean(U[fl_sel], beta_b), flower_bulyan_default)}
    res["tie_breaking"] = tie_breaking(bz)
    res["load_average_after"] = os.getloadavg()[0]
    res["environment"] = environment()
    res["command"] = " ".join(["benchmarks/bench_aggregators.py", *sys.argv[1:]])
    path = write_json(args.output, res)

    print(f"\nn={n} x d={d:,} float64, f={f}; seconds = median of {R}, 1 thread; ratio = theirs / ours "
          f"(Flower's includes decoding the ArrayRecords, {decode_s:.2f} s; one gc.collect() here: {gc_s:.3f} s)\n")
    print("| rule | ours | ours s (cpu) | peer | peer call | max abs diff | peer s (cpu) | ratio wall (cpu) |\n"
          "|---|---|---|---|---|---|---|---|")
    for rule, r in res["rules"].items():
        for peer in ("flower", "byzfl"):
            for e in r[peer]:
                secs = f"{e['seconds']:.2f} ({e['cpu_seconds']:.2f})" if "seconds" in e else "-"
                ratio = (f"{e['time_ratio_theirs_over_ours']:.2f} ({e['cpu_ratio_theirs_over_ours']:.2f})"
                         if "seconds" in e else "-")
                diff = "; ".join(f"{v:.3g} vs {k}" for k, v in e["max_abs_diff_vs"].items())
                print(f"| {rule} | {r['ours']['call']} | {r['ours']['seconds']:.2f} ({r['ours']['cpu_seconds']:.2f}) | "
                      f"{peer} | {e['call']} | {diff} | {secs} | {ratio} |")
    print("\nRMS distance to the honest rows' mean: " + "; ".join(
        f"{rule}: ours {r['ours']['rms_vs_honest_mean']:.4f}, "
        + ", ".join(f"{p} {e['parameters']} {e['rms_vs_honest_mean']:.4f}" for p in ("flower", "byzfl") for e in r[p])
        for rule, r in res["rules"].items()))
    sel = res["rules"]["bulyan"]["selection"]
    print(f"\nBulyan selection: only ours {sel['only_ours']}, only Flower {sel['only_flower']}; our stage 2 on "
          f"Flower's set vs Flower: {sel['ours_stage2_on_flower_set_max_abs_diff']:.3g}")
    print(f"Krum rows: ours {krum_idx}, " + ", ".join(f"{p} {e['parameters']} {e.get('chosen_row')}"
                                                   for p in ("flower", "byzfl") for e in res["rules"]["krum"][p]))
    print(f"tie breaking: {res['tie_breaking']}")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
