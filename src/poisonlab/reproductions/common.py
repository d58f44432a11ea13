"""What the reproductions share: the per-run context, R1's MNIST cells, statistics over seeds.

Nothing here holds state between runs. Data a run loads lives in its :class:`RunContext`
(created by :func:`~poisonlab.reproductions.run_reproduction` and dropped when it returns);
trained models shared between reproductions (R1's, inspected by R11-R13) live in the run
layer's model cache, a folder (:class:`~poisonlab.runs.cache.Cache`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from ..evaluation.experiment import describe
from ..runs.events import Event, training_callback
from ..runs.scenario import Scenario

Emit = Callable[[Event], None]

#: R1's data: MNIST's first 50,000 training digits (the other 10,000 are the clean validation
#: split that the defenders of R6, R11 and R13 draw from; the attacker never touches them).
MNIST_DATASET: Mapping[str, Any] = MappingProxyType({"name": "mnist", "train_size": 50_000})
#: R1's network (two 5x5 convolutions, two dense layers), the victim of every MNIST backdoor.
MNIST_ARCHITECTURE = "strip-mnist-cnn"


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value), min, max and count.

    Examples
    --------
    >>> mean_std([1.0, 3.0])["mean"], round(mean_std([1.0, 3.0])["std"], 4)
    (2.0, 1.4142)
    """
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "n": int(arr.size)}


def mnist_splits(data_dir: Any = None):
    """``(train, validation, test)``: MNIST's first 50,000 training digits (R1's training set),
    the other 10,000 (held out: the defenders' clean data), and the test set."""
    from ..data import load_mnist

    splits = load_mnist(data_dir)
    full, n = splits.train, MNIST_DATASET["train_size"]
    return full.subset(np.arange(n)), full.subset(np.arange(n, len(full))), splits.test


def train_config(seed: int, epochs: int):
    """The MNIST victims' training: Adam 1e-3, batches of 128, ``epochs`` epochs, ``seed``."""
    from ..models.training import TrainConfig

    return TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, optimizer="adam", seed=seed)


def train_dict(epochs: int) -> dict[str, Any]:
    """:func:`train_config` as a scenario's ``model.train`` (the seed comes from the cell)."""
    return {"epochs": epochs, "batch_size": 128, "lr": 0.001, "optimizer": "adam"}


@dataclass
class RunContext:
    """What one :func:`~poisonlab.reproductions.run_reproduction` call hands every seed.

    Created per run and dropped when the run returns: the datasets it loads are kept for the
    run's seeds only, never between runs.

    Parameters
    ----------
    data_dir : path or None
        Where named datasets live (None: ``$POISONLAB_DATA_DIR``).
    cache_dir : path
        The run layer's cache folder: models trained through :meth:`cell` are stored there and
        loaded, not retrained, by any later cell with the same configuration.
    emit : callable ``Event -> None``
        Where progress goes (training bars, finished targets).
    threads : int
        The torch/BLAS thread count the run holds fixed; part of a cached model's key.

    Attributes
    ----------
    cells : list of dict
        The scenarios of the cells run so far (the run record lists them).
    """

    data_dir: Path | None
    cache_dir: Path
    emit: Emit
    threads: int
    cells: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    _datasets: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def mnist(self):
        """:func:`mnist_splits` of this run's data folder, loaded once per run."""
        if "mnist" not in self._datasets:
            self._datasets["mnist"] = mnist_splits(self.data_dir)
        return self._datasets["mnist"]

    def progress(self) -> Callable[[str, str, dict], None]:
        """A ``progress(label, event, info)`` callback for :mod:`poisonlab.evaluation.experiment`'s
        functions, turned into typed training events."""
        def progress(label: str, event: str, info: dict) -> None:
            training_callback(self.emit, label)(event, info)

        return progress

    def cell(self, scenario: Scenario):
        """Poison and train one cell through the run layer
        (:func:`~poisonlab.runs.steps.execute_cell`, steps poison and train) with this run's
        cache: a model trained before under the same configuration is loaded, not retrained.
        Returns the cell's context (``.splits``, ``.attacks``, ``.models``, ``.results``)."""
        from ..runs.steps import execute_cell

        as_dict = scenario.to_dict()
        if as_dict not in self.cells:
            self.cells.append(as_dict)
        return execute_cell(scenario, cache_dir=self.cache_dir, data_dir=self.data_dir, emit=self.emit,
                            steps=("poison", "train"))


    def grid(self, scenario: Scenario) -> list[dict[str, Any]]:
        """Run ``scenario`` (a grid, or one cell) through the runner with this run's cache:
        finished cells are stored by the hash of their configuration, so a stopped run resumes
        and two reproductions asking for the same cell (R24 and R20 share R20's ALIE cells)
        compute it once. Returns the cells (``name``, ``seed``, ``results``) in grid order."""
        from ..runs.runner import Runner

        as_dict = scenario.to_dict()
        if as_dict not in self.cells:
            self.cells.append(as_dict)
        record = Runner(cache_dir=self.cache_dir, data_dir=self.data_dir, subscribers=[self.emit]).run(scenario)
        if record["kind"] == "grid":
            return record["results"]["cells"]
        return [{"name": scenario.name, "seed": scenario.seeds[0], "results": record["results"]}]


def mnist_scenario(name: str, seed: int, *, attack: str, params: Mapping[str, Any], epochs: int,
                   clean_baseline: bool, threads: int) -> Scenario:
    """One MNIST backdoor cell: R1's data (:data:`MNIST_DATASET`) and network
    (:data:`MNIST_ARCHITECTURE`, trained by :func:`train_config`), one attack. The cell's seed
    is the attack's ``random_state`` and the training seed."""
    return Scenario.model_validate({
        "name": name,
        "dataset": dict(MNIST_DATASET),
        "model": {"architecture": MNIST_ARCHITECTURE, "train": train_dict(epochs)},
        "attacks": [{"name": attack, "params": dict(params)}],
        "seeds": [seed],
        "clean_baseline": clean_baseline,
        "steps": ["poison", "train"],
        "threads": threads,
    })



def backdoor_output(cell: Any, *, validation: Any = None) -> dict[str, Any]:
    """A cell's backdoor run as one seed's record: the attack, the training, and for each
    trained model (poisoned, then clean where trained) clean accuracy, ASR, per-class accuracy,
    confusion matrix, training time and epochs. With ``validation`` (a Dataset), each model's
    accuracy on it; without, ``best_epoch`` is the last epoch (what training without validation
    data reports)."""
    from ..evaluation.metrics import backdoor_metrics
    from ..models.training import TrainConfig

    train, test = cell.splits.train, cell.splits.test
    atk = cell.attacks[0]
    poison = cell.results["poison"]["attacks"][0]
    model = cell.scenario.model
    out: dict[str, Any] = {
        "dataset": train.name, "n_train": len(train), "n_test": len(test),
        "attack": {"name": type(atk).__name__, "params": describe(atk.get_params()),
                   "n_poison": poison["n_poison"], "poison_seconds": cell.timings["poison"],
                   **{k: describe(v) for k, v in poison["info"].items()}},
        "train_config": TrainConfig(**{"seed": cell.seed, **model.train}).to_dict(),
        "architecture": model.architecture,
    }
    for label, clf in cell.models.items():
        m = backdoor_metrics(clf, atk, test.X, test.y, test.n_classes)
        info = getattr(clf, "training_info_", {})
        m.update(train_seconds=info.get("train_seconds"), epochs_run=info.get("epochs_run"))
        if validation is not None:
            m["validation_accuracy"] = float(np.mean(clf.predict(validation.X) == validation.y))
        else:
            m["best_epoch"] = info.get("epochs_run")
        out[label] = m
    return out


def training_info(cell: Any, label: str = "poisoned") -> dict[str, Any]:
    """``train_seconds`` and ``epochs_run`` of a cell's model (as trained, even when loaded
    from the cache)."""
    info = getattr(cell.models[label], "training_info_", {})
    return {"train_seconds": info.get("train_seconds"), "epochs_run": info.get("epochs_run")}


def victim_run(train, test, atk, seed: int, epochs: int, ctx: RunContext | None = None, *,
               architecture: str = MNIST_ARCHITECTURE, **poison_kwargs: Any) -> dict:
    """Poison ``train`` with ``atk`` and train ``architecture`` (default R1's CNN) on it for
    ``epochs`` epochs (:func:`train_config`), no clean baseline:
    :func:`~poisonlab.evaluation.experiment.run_backdoor`'s run, models included. For attacks a
    scenario cannot express (a surrogate of the caller's in ``poison_kwargs``); training progress
    goes to ``ctx.emit`` when a context is given."""
    from ..evaluation.experiment import run_backdoor

    return run_backdoor(train, test, atk, architecture=architecture, config=train_config(seed, epochs),
                        clean_baseline=False, progress=ctx.progress() if ctx is not None else None,
                        poison_kwargs=poison_kwargs or None)


def strip_models(out: dict) -> dict:
    """A :func:`~poisonlab.evaluation.experiment.run_backdoor` result without its models and
    poison result (what a record keeps)."""
    out = dict(out)
    out.pop("models", None), out.pop("poison_result", None)
    return out


def backdoor_summary(runs: list[dict], *, clean_min: float | None, asr_min: float) -> dict:
    """Pass rule of a plain backdoor: mean ASR (and clean accuracy, when ``clean_min``) over seeds."""
    clean = mean_std([r["poisoned"]["clean_accuracy"] for r in runs])
    asr = mean_std([r["poisoned"]["attack_success_rate"] for r in runs])
    passed = asr["mean"] >= asr_min and (clean_min is None or clean["mean"] >= clean_min)
    verdict = f"ASR {asr['mean']:.2%} +- {asr['std']:.2%} (target >= {asr_min:.0%}), clean {clean['mean']:.2%}"
    if clean_min is not None:
        verdict += f" (target >= {clean_min:.1%})"
    return {"measured": {"clean_accuracy": clean, "attack_success_rate": asr}, "passed": passed,
            "verdict": verdict}
