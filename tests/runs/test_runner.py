"""The runner: records reproduce in-process, across processes and across backends; a grid
killed midway resumes without recomputing finished cells."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from poisonlab.runs import Runner, Scenario
from poisonlab.runs.events import CellFinished, EpochEnded, StepFinished, StepStarted
from poisonlab.runs.record import RECORD_VERSION, fingerprint

TINY = {"name": "tiny", "dataset": "digits",
        "model": {"architecture": "mlp", "train": {"epochs": 2, "batch_size": 64}},
        "attacks": [{"name": "badnets", "params": {"poison_rate": 0.1, "target": 0, "value": 1.0}}],
        "defenses": {"data": ["spectral"]}}
GRID = {**TINY, "name": "grid", "seeds": [0],
        "sweep": {"attacks": [{"name": "badnets", "params": {"poison_rate": 0.05, "value": 1.0}},
                              {"name": "random_label_flip", "params": {"poison_rate": 0.05}}],
                  "detectors": ["spectral", "knn_label"],
                  "params": {"attacks[0].params.poison_rate": [0.05, 0.1]}}}


def _cli(*args, cwd=None, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "poisonlab", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _write(tmp_path, data, name="s.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_a_run_record_holds_scenario_results_environment():
    events = []
    record = Runner(subscribers=[events.append]).run(Scenario.model_validate(TINY))
    assert record["record_version"] == RECORD_VERSION and record["kind"] == "run"
    res = record["results"]
    assert set(res) >= {"data", "poison", "train", "scan"}
    assert res["poison"]["n_poison"] == round(0.1 * res["data"]["train"]["n"])
    poisoned, clean = res["train"]["poisoned"], res["train"]["clean"]
    assert 0.5 < poisoned["clean_accuracy"] <= 1 and len(poisoned["weights_sha256"]) == 64
    assert poisoned["clean_model_asr"] == clean["attack_success_rate"]
    assert poisoned["weights_sha256"] != clean["weights_sha256"]
    assert set(res["scan"]["evaluation"]) >= {"spectral", "combined (quarantine)"}
    env = record["environment"]
    assert env["versions"]["torch"] and env["versions"]["numpy"] and env["threads"] == 1
    assert env["argv"] == sys.argv
    assert record["fingerprint"] == fingerprint({"scenario": record["scenario"], "results": res,
                                                 "cell": record["cell"]})
    kinds = {type(e) for e in events}
    assert {StepStarted, StepFinished, EpochEnded} <= kinds
    steps = [e.step for e in events if isinstance(e, StepFinished) and e.label == "tiny seed=0"]
    assert steps == ["poison", "train", "scan"]


def test_same_scenario_same_record_in_process():
    s = Scenario.model_validate(TINY)
    a, b = Runner().run(s), Runner().run(s)
    assert a["results"] == b["results"] and a["fingerprint"] == b["fingerprint"]
    other = Scenario.model_validate({**TINY, "seeds": [1]})
    assert Runner().run(other)["results"]["poison"]["poison_mask_sha256"] != a["results"]["poison"]["poison_mask_sha256"]


def test_same_record_in_fresh_processes(tmp_path):
    path = _write(tmp_path, TINY)
    prints = []
    for out in ("a", "b"):
        proc = _cli("run", str(path), "--out-dir", str(tmp_path / out), "--no-cache")
        prints.append(proc.communicate(timeout=300)[0])
        assert proc.returncode == 0, prints[-1]
    a, b = (json.loads((tmp_path / o / "record.json").read_text()) for o in ("a", "b"))
    here = Runner().run(Scenario.model_validate(TINY))
    assert a["fingerprint"] == b["fingerprint"] == here["fingerprint"]
    assert a["results"]["train"]["poisoned"]["weights_sha256"] == here["results"]["train"]["poisoned"]["weights_sha256"]
    assert "record:" in prints[0]


def test_grid_cache_reuses_finished_cells(tmp_path):
    s = Scenario.model_validate(GRID)
    first = Runner(cache_dir=tmp_path).run(s)
    assert first["kind"] == "grid" and first["n_cells"] == 8 and first["n_cached"] == 0
    events = []
    second = Runner(cache_dir=tmp_path, subscribers=[events.append]).run(s)
    assert second["n_cached"] == 8 and second["fingerprint"] == first["fingerprint"]
    assert all(e.cached for e in events if isinstance(e, CellFinished))
    # cells differing only in the detector shared their training
    models = list((tmp_path / "models").glob("*.safetensors"))
    assert len(models) == 4 + 1  # 4 poisoned training sets (2 attacks x 2 rates) + 1 clean


def test_pool_backend_gives_the_local_record(tmp_path):
    s = Scenario.model_validate(GRID)
    local = Runner().run(s)
    pool = Runner(backend="pool", workers=2, cache_dir=tmp_path).run(s)
    assert pool["fingerprint"] == local["fingerprint"]
    assert pool["results"] == local["results"]
    # one slot: the calling process alone, no worker spawned
    alone = Runner(backend="pool", workers=1, cache_dir=tmp_path / "alone").run(s)
    assert alone["fingerprint"] == local["fingerprint"]


def test_ray_backend_gives_the_local_record(tmp_path):
    pytest.importorskip("ray")
    s = Scenario.model_validate(GRID)
    local = Runner().run(s)
    ray_record = Runner(backend="ray", workers=2, cache_dir=tmp_path).run(s)
    assert ray_record["fingerprint"] == local["fingerprint"]


def test_grid_killed_midway_resumes_without_recomputing(tmp_path):
    grid = {**GRID, "model": {"architecture": "mlp", "train": {"epochs": 6, "batch_size": 64}}}
    path = _write(tmp_path, grid, "grid.json")
    out = tmp_path / "out"
    cells = out / "cache" / "cells"
    proc = _cli("run", str(path), "--out-dir", str(out), start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(cells.glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cells.glob("*.json")}
    assert 2 <= len(finished) < 8, "the grid was not stopped midway"
    assert not (out / "record.json").exists()
    proc = _cli("run", str(path), "--out-dir", str(out))
    assert proc.communicate(timeout=300)[0] and proc.returncode == 0
    record = json.loads((out / "record.json").read_text())
    assert record["n_cached"] >= len(finished)
    for name, (mtime, data) in finished.items():  # never recomputed nor rewritten
        p = cells / name
        assert p.stat().st_mtime_ns == mtime and p.read_bytes() == data
    assert len(list(cells.glob("*.json"))) == 8
    assert record["fingerprint"] == Runner().run(Scenario.model_validate(grid))["fingerprint"]


def test_bad_backend_and_workers():
    with pytest.raises(ValueError, match="backend must be one of"):
        Runner(backend="spark")
    with pytest.raises(ValueError, match="workers must be a positive int"):
        Runner(workers=0)


def test_an_interrupted_pool_stops_the_cell_in_the_calling_process(tmp_path):
    # the calling process's slot runs in a thread, which cannot be interrupted: on the way out
    # the pool tells it to stop at its next event instead of finishing a long training
    long_first = {**TINY, "name": "stop", "seeds": [0],
                  "sweep": {"params": {"model.train.epochs": [100000, 1]}}}
    s = Scenario.model_validate(long_first)

    def interrupt(event):
        if isinstance(event, CellFinished) and not event.cached:  # the short cell, in the worker
            raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        Runner(backend="pool", workers=2, cache_dir=tmp_path, subscribers=[interrupt]).run(s)
    assert time.monotonic() - t0 < 120
    assert len(list((tmp_path / "cells").glob("*.json"))) == 1  # the long cell never finished
