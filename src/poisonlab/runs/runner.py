"""The runner: one way to execute any scenario, on any backend, into a run record.

:class:`Runner` expands a scenario into cells (one per sweep combination and seed), runs the
cells that the cache does not already hold on the chosen backend, and assembles a versioned run
record (:mod:`poisonlab.runs.record`). Cells that share a training configuration run together in
one task, so that a grid over detectors trains each poisoned model once.

Backends (the same scenario gives the same record on each, at a fixed thread count):

* ``"local"`` -- in this process, cell after cell; events reach the subscribers as they happen;
* ``"pool"`` -- ``workers`` slots on this machine: the calling process (one thread, already warm)
  and ``workers - 1`` ``spawn``ed worker processes, each taking the next group of cells when free;
* ``"ray"`` -- Ray (``pip install 'poisonlab[ray]'``): a local Ray instance, or the cluster
  ``ray.init`` finds (``RAY_ADDRESS``).

With pool and Ray, the runner emits a CellStarted/CellFinished event per cell; the per-epoch
events of the workers stay in the workers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ..exceptions import InvalidParameterError, PoisonlabError
from .cache import Cache
from .events import CellFinished, CellStarted, Event, Note
from .record import make_record
from .scenario import Scenario, expand
from .steps import run_cell

BACKENDS = ("local", "pool", "ray")
#: Fields of a cell that do not change what it computes.
_COSMETIC = ("name", "description")
#: Fields that only act after training: cells differing only in these share a training.
_AFTER_TRAINING = ("defenses", "metrics", "retrain", "contamination", "steps")


def cell_key(cell: Scenario) -> str:
    """The cache key of a cell: the hash of its resolved configuration."""
    data = {k: v for k, v in cell.to_dict().items() if k not in _COSMETIC}
    return Cache.key(data)


def _group_key(cell: Scenario) -> str:
    data = {k: v for k, v in cell.to_dict().items() if k not in _COSMETIC + _AFTER_TRAINING}
    return Cache.key(data)


class Runner:
    """Run scenarios.

    Parameters
    ----------
    backend : {"local", "pool", "ray"}, default="local"
    workers : int, optional
        "pool": slots, the calling process plus ``workers - 1`` spawned processes; "ray": worker
        processes (default: the number of CPUs).
    cache_dir : path, optional
        The grid cache (finished cells and trained models). Without one nothing is reused.
    data_dir : path, optional
        Where named datasets' files live (default: ``$POISONLAB_DATA_DIR``).
    subscribers : list of callables ``Event -> None``

    Examples
    --------
    >>> from poisonlab.runs import Runner, Scenario
    >>> s = Scenario.model_validate({"name": "tiny", "dataset": "digits",
    ...     "model": {"architecture": "mlp", "train": {"epochs": 2}},
    ...     "attacks": [{"name": "badnets", "params": {"poison_rate": 0.1, "target": 0}}]})
    >>> record = Runner().run(s)
    >>> record["kind"], 0.0 <= record["results"]["train"]["poisoned"]["attack_success_rate"] <= 1.0
    ('run', True)
    """

    def __init__(self, *, backend: str = "local", workers: int | None = None,
                 cache_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 subscribers: list[Callable[[Event], None]] | None = None) -> None:
        if backend not in BACKENDS:
            raise InvalidParameterError(f"backend must be one of {BACKENDS}; got {backend!r}")
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise InvalidParameterError(f"workers must be a positive int; got {workers!r}")
        self.backend = backend
        self.workers = workers
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.data_dir = str(data_dir) if data_dir is not None else None
        self.subscribers = list(subscribers or [])

    def emit(self, event: Event) -> None:
        for sub in self.subscribers:
            sub(event)

    def run(self, scenario: Scenario) -> dict[str, Any]:
        """Run ``scenario``; return its record (kind "run" for one cell, "grid" otherwise)."""
        t0 = time.perf_counter()
        cells = expand(scenario)
        keys = [cell_key(c) for c in cells]
        cache = Cache(self.cache_dir)
        results: list[dict[str, Any] | None] = [cache.get_cell(k) for k in keys]
        cached = [r is not None for r in results]
        todo = [i for i, r in enumerate(results) if r is None]
        total = len(cells)
        for i in range(total):
            if cached[i]:
                self.emit(CellFinished(label=cells[i].name, cell=keys[i], index=i, total=total, cached=True))
        if todo and len(cells) > 1 and any(cached):
            self.emit(Note(text=f"{total - len(todo)} of {total} cells come from the cache; "
                                f"running {len(todo)}"))
        groups: dict[str, list[int]] = {}
        for i in todo:
            groups.setdefault(_group_key(cells[i]), []).append(i)
        work = [[(i, keys[i], cells[i].to_dict()) for i in idx] for idx in groups.values()]

        def done(i: int, result: dict[str, Any], seconds: float) -> None:
            if "error" in result:
                raise PoisonlabError(f"cell {cells[i].name!r} failed: {result['error']}")
            cache.put_cell(keys[i], result)
            results[i] = result
            self.emit(CellFinished(label=cells[i].name, cell=keys[i], index=i, total=total,
                                   seconds=seconds))

        if work:
            runner = {"local": self._run_local, "pool": self._run_pool, "ray": self._run_ray}[self.backend]
            runner(work, total, done)
        timings = {"total": time.perf_counter() - t0}
        data_files = [scenario.dataset.path] if scenario.dataset.path else []
        if scenario.sweep is None and len(cells) == 1:
            res = results[0]
            return make_record(kind="run", scenario=scenario.to_dict(), results=res["results"],
                               timings={**timings, "steps": res["timings"]}, threads=scenario.threads,
                               data_files=data_files, cell=keys[0], cached=cached[0],
                               backend=self.backend)
        cell_results = [{"name": cells[i].name, "cell": keys[i], "seed": cells[i].seeds[0],
                         "results": results[i]["results"]} for i in range(total)]
        cell_runs = [{"cell": keys[i], "seconds": sum(results[i]["timings"].values()), "cached": cached[i]}
                     for i in range(total)]
        return make_record(kind="grid", scenario=scenario.to_dict(), results={"cells": cell_results},
                           timings={**timings, "cells": cell_runs}, threads=scenario.threads,
                           data_files=data_files, backend=self.backend,
                           n_cells=total, n_cached=sum(cached))

    # -- backends -----------------------------------------------------------------------------

    def _run_local(self, work, total, done) -> None:
        for group in work:
            for i, key, cell in group:
                self.emit(CellStarted(label=cell["name"], cell=key, index=i, total=total))
                t = time.perf_counter()
                result = run_cell(cell, cache_dir=self.cache_dir, data_dir=self.data_dir, emit=self.emit)
                done(i, result, time.perf_counter() - t)

    def _run_pool(self, work, total, done) -> None:
        """Run the groups on ``workers`` slots: the calling process (in a thread; warm: its
        imports are done, nothing to spawn) and ``workers - 1`` spawned processes, each taking the
        next group when it is free."""
        import multiprocessing
        import os
        import threading
        from collections import deque
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait

        workers = self.workers or os.cpu_count() or 1
        n_procs = min(workers - 1, len(work) - 1)
        cache = str(self.cache_dir) if self.cache_dir else None
        queue = deque(work)
        caller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poisonlab-cell")
        procs = (ProcessPoolExecutor(max_workers=n_procs, mp_context=multiprocessing.get_context("spawn"))
                 if n_procs > 0 else None)
        pending: dict[Any, Any] = {}
        stop = threading.Event()  # set on the way out: the caller's slot stops at its next event

        def submit(executor) -> None:
            group = queue.popleft()
            for i, key, cell in group:
                self.emit(CellStarted(label=cell["name"], cell=key, index=i, total=total))
            extra = (stop,) if executor is caller else ()
            pending[executor.submit(run_group, group, cache, self.data_dir, *extra)] = executor

        def fill() -> None:
            if queue and caller not in pending.values():
                submit(caller)
            while queue and procs is not None and sum(e is procs for e in pending.values()) < n_procs:
                submit(procs)

        try:
            fill()
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in finished:
                    del pending[fut]
                    for i, result, seconds in fut.result():
                        done(i, result, seconds)
                fill()
        finally:
            queue.clear()
            stop.set()
            caller.shutdown(wait=True, cancel_futures=True)
            if procs is not None:
                procs.shutdown(wait=True, cancel_futures=True)

    def _run_ray(self, work, total, done) -> None:
        try:
            import ray
        except ImportError as exc:
            raise InvalidParameterError("the ray backend needs Ray: pip install 'poisonlab[ray]' "
                                        "(with -c constraints.txt)") from exc
        started = not ray.is_initialized()
        if started:
            import os

            ray.init(num_cpus=self.workers or os.cpu_count(), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        try:
            remote = ray.remote(num_cpus=1)(run_group)
            cache = str(self.cache_dir) if self.cache_dir else None
            refs = {}
            for group in work:
                for i, key, cell in group:
                    self.emit(CellStarted(label=cell["name"], cell=key, index=i, total=total))
                refs[remote.remote(group, cache, self.data_dir)] = group
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    for i, result, seconds in ray.get(ref):
                        done(i, result, seconds)
        finally:
            if started:
                ray.shutdown()


class _Stopped(BaseException):
    """Raised inside the calling process's slot when the pool is interrupted (not an error)."""


def _stop_on(stop: Any) -> Callable[[Event], None]:
    """An ``emit`` that stops the cell at its next event once ``stop`` (a threading.Event) is set:
    a thread cannot be interrupted, but every step and epoch emits an event."""
    def emit(event: Event) -> None:
        if stop.is_set():
            raise _Stopped
    return emit


def run_group(group: list[tuple[int, str, dict[str, Any]]], cache_dir: str | None,
              data_dir: str | None, stop: Any = None) -> list[tuple[int, dict[str, Any], float]]:
    """Run cells that share a training, one after another, in a worker. Each finished cell is
    written to the cache at once, so a killed grid loses at most the cells in progress.
    ``stop`` (a ``threading.Event``, for the slot in the calling process) ends the group at the
    next event of its cell once set; nothing unfinished reaches the cache."""
    out = []
    cache = Cache(cache_dir)
    emit = _stop_on(stop) if stop is not None else None
    for i, key, cell in group:
        t = time.perf_counter()
        try:
            result = run_cell(cell, cache_dir=cache_dir, data_dir=data_dir, emit=emit)
        except PoisonlabError as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        if "error" not in result:
            cache.put_cell(key, result)
        out.append((i, result, time.perf_counter() - t))
    return out


def run_scenario(scenario: Scenario, **runner_kwargs: Any) -> dict[str, Any]:
    """``Runner(**runner_kwargs).run(scenario)``."""
    return Runner(**runner_kwargs).run(scenario)
