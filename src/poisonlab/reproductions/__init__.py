"""The reproduction suite: published results re-measured, one module per ID.

Each module ``rNN_<name>.py`` holds one reproduction: its description (``ID``, ``TITLE``,
``SETTING``, ``PAPER``, ``TARGET``), what it costs and needs (``MINUTES``, ``DATA``), a
``run(seed, ctx)`` that measures one seed, and a ``summarize(runs)`` that aggregates the seeds
and applies the pass rule. Reproductions that poison and train a model do it through the run
layer (a :class:`~poisonlab.runs.Scenario` cell, :func:`~poisonlab.runs.steps.execute_cell`),
so trained models are cached in a folder and shared between IDs: R11, R12 and R13 inspect R1's
models (:func:`~poisonlab.reproductions.r01_badnets_mnist.r1_cell`) without training them again.

:func:`run_reproduction` runs the seeds and returns a run record
(:func:`~poisonlab.runs.record.make_record`, kind ``"reproduction"``). Nothing here keeps state
between calls: data is loaded per run (:class:`~poisonlab.reproductions.common.RunContext`) and
models live in the cache folder.

Adding an ID: write ``rNN_<name>.py`` with the pieces above and list it in :data:`MODULES`.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Callable, Iterator, Mapping

from ..exceptions import InvalidParameterError
from ..runs.events import Event, SeedFinished
from ..runs.record import make_record
from ..runs.steps import fixed_threads
from . import (
    r01_badnets_mnist,
    r02_badnets_rate_sweep,
    r03_blended,
    r04_sig_cifar10,
    r05_wanet,
    r06_label_consistent,
    r06_label_consistent_cifar10,
    r07_feature_collision,
    r08_gradient_matching,
    r09_svm_poisoning,
    r10_text_backdoors,
    r11_strip,
    r12_neural_cleanse,
    r13_fine_pruning,
    r14_data_detectors,
    r15_anti_backdoor,
    r16_dpa,
    r17_roni,
    r18_dp_sgd,
    r19_confident_learning,
    r20_byzantine_grid,
    r21_model_replacement,
    r22_foolsgold,
    r23_run_off,
    r24_min_max,
    r25_continuous_retraining,
    r26_availability,
)
from .common import RunContext, mean_std

#: The reproduction modules, in ID order.
MODULES: tuple[ModuleType, ...] = (
    r01_badnets_mnist, r02_badnets_rate_sweep, r03_blended, r04_sig_cifar10, r05_wanet,
    r06_label_consistent, r06_label_consistent_cifar10, r07_feature_collision, r08_gradient_matching, r09_svm_poisoning,
    r10_text_backdoors, r11_strip, r12_neural_cleanse, r13_fine_pruning, r14_data_detectors,
    r15_anti_backdoor, r16_dpa, r17_roni, r18_dp_sgd, r19_confident_learning, r20_byzantine_grid,
    r21_model_replacement, r22_foolsgold, r23_run_off, r24_min_max, r25_continuous_retraining, r26_availability,
)

#: What a reproduction module must define.
MODULE_PIECES = ("ID", "TITLE", "SETTING", "PAPER", "TARGET", "MINUTES", "DATA", "run", "summarize")


@dataclass(frozen=True)
class Reproduction:
    """One entry of the reproduction suite.

    Attributes
    ----------
    id : str
        "R1", "R2", ...
    title, setting, paper, target : str
        What is measured, exactly how, the published number, and the pass rule in words.
    run : callable ``(seed, ctx) -> dict``
        One seed's measurements (JSON-friendly); ``ctx`` is the run's
        :class:`~poisonlab.reproductions.common.RunContext`.
    summarize : callable ``list[dict] -> dict``
        ``{"measured": ..., "passed": bool, "verdict": str}`` over the seeds' measurements.
    minutes : float
        Expected CPU minutes per seed on one thread (measured; where an ID inspects R1's models,
        with those models already in the cache).
    data : tuple of str
        The built-in datasets it reads (``poisonlab datasets`` says where to put them).
    """

    id: str
    title: str
    setting: str
    paper: str
    target: str
    run: Callable[[int, RunContext], dict]
    summarize: Callable[[list[dict]], dict]
    minutes: float = 0.0
    data: tuple[str, ...] = ()


def from_module(module: ModuleType) -> Reproduction:
    """The :class:`Reproduction` a module describes (see :data:`MODULE_PIECES`)."""
    missing = [p for p in MODULE_PIECES if not hasattr(module, p)]
    if missing:
        raise InvalidParameterError(f"reproduction module {module.__name__} lacks {missing}")
    return Reproduction(id=module.ID, title=module.TITLE, setting=module.SETTING, paper=module.PAPER,
                        target=module.TARGET, run=module.run, summarize=module.summarize,
                        minutes=float(module.MINUTES), data=tuple(module.DATA))


#: Every reproduction by ID (read-only).
REPRODUCTIONS: Mapping[str, Reproduction] = MappingProxyType({m.ID: from_module(m) for m in MODULES})


@contextlib.contextmanager
def _cache_folder(cache_dir: str | Path | None) -> Iterator[Path]:
    """``cache_dir``, or a temporary folder removed when the run ends (R1's models are then
    still trained once per run, and nothing is left behind)."""
    if cache_dir is not None:
        yield Path(cache_dir)
        return
    with tempfile.TemporaryDirectory(prefix="poisonlab-reproduce-") as tmp:
        yield Path(tmp)


def _check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidParameterError(f"{name} must be a positive int; got {value!r}")


def run_reproduction(id: str, *, seeds: int = 3, data_dir: str | Path | None = None,
                     cache_dir: str | Path | None = None, emit: Callable[[Event], None] | None = None,
                     on_seed: Callable[[dict], None] | None = None, threads: int | None = None) -> dict[str, Any]:
    """Run reproduction ``id`` over seeds ``0 .. seeds-1``; return its run record.

    Parameters
    ----------
    id : str
        A key of :data:`REPRODUCTIONS`.
    seeds : int, default=3
    data_dir : path, optional
        Where the datasets live (default ``$POISONLAB_DATA_DIR``).
    cache_dir : path, optional
        The run layer's cache folder: trained models are kept there and reused by any later
        run (R11-R13 reuse R1's; an interrupted run keeps what it trained). Default: a temporary
        folder for this call only, removed at the end.
    emit : callable ``Event -> None``, optional
        Receives typed events: training progress, a ``TargetFinished`` per target of R7/R8, a
        ``SeedFinished`` after each seed.
    on_seed : callable ``record -> None``, optional
        Called after every seed with the record of the seeds finished so far (``"partial":
        True`` until the last), so a long run that is stopped keeps what it measured.
    threads : int, optional
        torch/BLAS threads, fixed for the run (default: torch's current count). Part of a cached
        model's key: floating-point reductions depend on it.

    Returns
    -------
    dict
        A run record (kind ``"reproduction"``: environment, fingerprint, ...) that also holds
        the suite's fields at the top level: ``id``, ``title``, ``setting``, ``paper``,
        ``target``, ``seeds`` (finished), ``per_seed``, ``measured``, ``passed``, ``verdict``,
        ``seconds``, ``partial``.

    Examples
    --------
    >>> from poisonlab.reproductions import REPRODUCTIONS
    >>> REPRODUCTIONS["R1"].data, REPRODUCTIONS["R11"].title
    (('mnist',), "STRIP on R1's model")
    """
    reps = REPRODUCTIONS
    if id not in reps:
        raise InvalidParameterError(f"unknown reproduction {id!r}; available: {sorted(reps)}")
    _check_positive_int(seeds, "seeds")
    _check_positive_int(threads, "threads", allow_none=True)
    rep = reps[id]
    emit = emit or (lambda event: None)
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    t0 = time.perf_counter()
    per_seed: list[dict] = []
    record: dict[str, Any] = {}
    with _cache_folder(cache_dir) as cache, fixed_threads(threads):
        ctx = RunContext(data_dir=Path(data_dir) if data_dir is not None else None, cache_dir=cache,
                         emit=emit, threads=threads)
        for seed in range(seeds):
            s0 = time.perf_counter()
            measured = dict(rep.run(seed, ctx))
            measured["seed"], measured["seconds"] = seed, time.perf_counter() - s0
            per_seed.append(measured)
            emit(SeedFinished(label=id, seed=seed, seeds=seeds, seconds=measured["seconds"]))
            record = _record(rep, per_seed, seeds=seeds, seconds=time.perf_counter() - t0,
                             threads=threads, cells=ctx.cells)
            if on_seed is not None:
                on_seed(record)
    return record


def id_order(rid: str) -> tuple[int, str]:
    """Sort key of a reproduction ID: R6 < R6c < R7 < R10 (a letter marks a second part of a row).

    >>> sorted(["R10", "R6c", "R7", "R6"], key=id_order)
    ['R6', 'R6c', 'R7', 'R10']
    """
    digits = rid[1:].rstrip("abcdefghijklmnopqrstuvwxyz")
    return int(digits), rid[1 + len(digits):]


#: Seeds the suite asks of every reproduction (``../shared/REPRODUCTIONS.md``).
SUITE_SEEDS = 3


def seed_note(verdict: str, n_seeds: int) -> str:
    """The verdict as recorded: one that rests on fewer seeds than the suite asks says so.

    >>> seed_note("ASR 99%", 1)
    'ASR 99% [stands on 1 seed; the suite asks for 3]'
    >>> seed_note("ASR 99%", 3)
    'ASR 99%'
    """
    if n_seeds >= SUITE_SEEDS:
        return verdict
    return f"{verdict} [stands on {n_seeds} seed{'s' if n_seeds != 1 else ''}; the suite asks for {SUITE_SEEDS}]"


def _record(rep: Reproduction, per_seed: list[dict], *, seeds: int, seconds: float, threads: int,
            cells: list[dict]) -> dict[str, Any]:
    summary = rep.summarize(per_seed)
    passed, verdict = bool(summary["passed"]), seed_note(summary.get("verdict", ""), len(per_seed))
    scenario = {"reproduction": rep.id, "seeds": list(range(seeds)), "threads": threads,
                "cells": list(cells)}
    return make_record(
        kind="reproduction", scenario=scenario,
        results={"measured": summary["measured"], "passed": passed, "verdict": verdict},
        timings={"total": seconds, "per_seed": [s["seconds"] for s in per_seed]}, threads=threads,
        id=rep.id, title=rep.title, setting=rep.setting, paper=rep.paper, target=rep.target,
        seeds=len(per_seed), per_seed=per_seed, measured=summary["measured"], passed=passed,
        verdict=verdict, seconds=seconds, partial=len(per_seed) < seeds, suite_seeds=SUITE_SEEDS,
        fewer_seeds_than_suite=len(per_seed) < SUITE_SEEDS)


__all__ = ("MODULES", "REPRODUCTIONS", "Reproduction", "RunContext", "SUITE_SEEDS", "from_module", "id_order", "mean_std",
           "run_reproduction", "seed_note")
